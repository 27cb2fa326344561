// The concept graph as SVG: a small force layout (repulsion between all nodes, springs along edges, a pull to the
// centre), run to rest before drawing. The stored graph is capped at 150 nodes, so O(n²) per step is a few ms.
import type { ConceptGraph } from '../src/text/graph.js';

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#f59e0b', '#3b82f6', '#10b981', '#ef4444', '#8b5cf6', '#ec4899', '#14b8a6', '#84cc16', '#f97316', '#6366f1'];
const WIDTH = 800;
const HEIGHT = 450;

interface Point {
  x: number;
  y: number;
  vx: number;
  vy: number;
}

/** Positions for the nodes, deterministic for the same graph (the start is a spiral, not random). */
export function layout(graph: ConceptGraph, steps = 300): Point[] {
  const n = graph.nodes.length;
  const index = new Map(graph.nodes.map((node, i) => [node.id, i]));
  const points: Point[] = graph.nodes.map((_, i) => {
    const angle = i * 2.399963; // the golden angle spreads a spiral evenly
    const r = 12 * Math.sqrt(i + 1);
    return { x: r * Math.cos(angle), y: r * Math.sin(angle), vx: 0, vy: 0 };
  });
  const edges = graph.edges
    .map((e) => ({ a: index.get(e.source), b: index.get(e.target), w: e.weight }))
    .filter((e): e is { a: number; b: number; w: number } => e.a !== undefined && e.b !== undefined);
  for (let step = 0; step < steps; step++) {
    const cooling = 1 - step / steps;
    for (let i = 0; i < n; i++) {
      const p = points[i]!;
      for (let j = i + 1; j < n; j++) {
        const q = points[j]!;
        const dx = p.x - q.x;
        const dy = p.y - q.y;
        const d2 = Math.max(dx * dx + dy * dy, 1);
        const f = 900 / d2;
        p.vx += dx * f;
        p.vy += dy * f;
        q.vx -= dx * f;
        q.vy -= dy * f;
      }
      p.vx -= p.x * 0.01;
      p.vy -= p.y * 0.01;
    }
    for (const e of edges) {
      const p = points[e.a]!;
      const q = points[e.b]!;
      const dx = q.x - p.x;
      const dy = q.y - p.y;
      const f = 0.02 * Math.max(0.1, e.w);
      p.vx += dx * f;
      p.vy += dy * f;
      q.vx -= dx * f;
      q.vy -= dy * f;
    }
    for (const p of points) {
      p.x += Math.max(-20, Math.min(20, p.vx)) * cooling;
      p.y += Math.max(-20, Math.min(20, p.vy)) * cooling;
      p.vx *= 0.5;
      p.vy *= 0.5;
    }
  }
  return points;
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Draws the graph into `container`, replacing what was there. Node size is PageRank, colour the Louvain community. */
export function drawGraph(container: HTMLElement, graph: ConceptGraph): void {
  container.replaceChildren();
  if (graph.nodes.length === 0) {
    container.textContent = 'no concepts were found';
    return;
  }
  const points = layout(graph);
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((WIDTH - 80) / Math.max(maxX - minX, 1), (HEIGHT - 40) / Math.max(maxY - minY, 1));
  const at = (p: Point) => ({ x: 40 + (p.x - minX) * scale, y: 20 + (p.y - minY) * scale });
  const svg = el('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `concept graph: ${graph.nodes.length} concepts, ${graph.edges.length} links` });
  const index = new Map(graph.nodes.map((node, i) => [node.id, i]));
  const maxWeight = Math.max(...graph.edges.map((e) => e.weight), 1e-9);
  for (const e of graph.edges) {
    const a = index.get(e.source);
    const b = index.get(e.target);
    if (a === undefined || b === undefined) continue;
    const p = at(points[a]!);
    const q = at(points[b]!);
    svg.append(el('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: '#94a3b8', 'stroke-opacity': 0.15 + 0.6 * (e.weight / maxWeight), 'stroke-width': 1 }));
  }
  const maxRank = Math.max(...graph.nodes.map((n) => n.rank), 1e-9);
  const labelled = new Set([...graph.nodes].sort((a, b) => b.rank - a.rank).slice(0, 25).map((n) => n.id));
  graph.nodes.forEach((node, i) => {
    const p = at(points[i]!);
    const circle = el('circle', { cx: p.x, cy: p.y, r: 3 + 9 * Math.sqrt(node.rank / maxRank), fill: COLORS[node.community % COLORS.length]!, 'data-concept': node.id });
    const title = el('title', {});
    title.textContent = `${node.label} (${node.type}): ${node.frequency} mentions, first at ${node.firstMentionSeconds.toFixed(1)} s`;
    circle.append(title);
    svg.append(circle);
    if (labelled.has(node.id)) {
      const text = el('text', { x: p.x + 8, y: p.y + 3 });
      text.textContent = node.label;
      svg.append(text);
    }
  });
  container.append(svg);
}
