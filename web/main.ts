// The dashboard: signs in with the server's client config (the local user on the emulators), lists the user's
// recordings through a Firestore listener, shows one task live (stages, progress), its results once they exist, and
// uploads recordings through the API with per-chunk progress.
import {
  ApiCallError,
  clock,
  connectClient,
  fetchClientConfig,
  fireflowApi,
  orderedStages,
  resultsMarkdown,
  watchTask,
  watchTasks,
  type AudioResults,
  type Connected,
  type FireflowApi,
  type WatchedTask,
} from '../src/client/index.js';
import { drawGraph } from './graph.js';

const PIPELINE = 'audio.process';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const STAGE_COLORS: Record<string, string> = { reassemble: '#64748b', transcribe: '#3b82f6', chunk: '#10b981', graph: '#8b5cf6', chapters: '#f59e0b', questions: '#ec4899' };

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const { dataset, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset) Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
}

function showError(error: unknown): void {
  const box = byId('error');
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

let session: Connected;
let api: FireflowApi;
let stopTask: (() => void) | undefined;
let shownTaskId: string | undefined;
/** Which results are on screen: the audio id and the completed stages they were fetched after. */
let resultsKey = '';
/** The recording the player was given a playback link for. */
let playerAudioId: string | undefined;
/** The transcript's word buttons with their times, in order: the one under the playhead is highlighted. */
let wordSpans: { start: number; end: number; el: HTMLElement }[] = [];
let playing: HTMLElement | undefined;

function highlightAt(seconds: number): void {
  // The last word starting at or before the playhead (binary search), if the playhead is still inside it.
  let lo = 0;
  let hi = wordSpans.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (wordSpans[mid]!.start <= seconds) [found, lo] = [mid, mid + 1];
    else hi = mid - 1;
  }
  const word = found >= 0 && seconds < wordSpans[found]!.end ? wordSpans[found]!.el : undefined;
  if (word === playing) return;
  playing?.classList.remove('playing');
  word?.classList.add('playing');
  playing = word;
}

function statusBadge(task: WatchedTask): HTMLElement {
  return h('span', { className: `status ${task.status}`, textContent: task.cancelRequested && task.status === 'running' ? 'cancelling' : task.status });
}

function bar(percent: number): HTMLElement {
  const inner = h('div');
  inner.style.width = `${percent}%`;
  return h('div', { className: 'bar' }, inner);
}

function renderList(tasks: WatchedTask[]): void {
  const list = byId('task-list');
  if (tasks.length === 0) {
    list.replaceChildren(h('li', { className: 'muted', textContent: 'no tasks yet' }));
    return;
  }
  list.replaceChildren(
    ...tasks.map((t) => {
      const li = h('li', { className: t.id === shownTaskId ? 'selected' : '', dataset: { taskId: t.id, status: t.status } },
        h('div', {}, statusBadge(t), ` ${Math.floor(t.progress)}% · ${t.createdAt ? t.createdAt.toLocaleTimeString() : ''}`),
        h('div', { className: 'id', textContent: t.id }),
        bar(t.progress));
      li.addEventListener('click', () => (location.hash = `#/tasks/${t.id}`));
      return li;
    }),
  );
}

function renderTask(task: WatchedTask | null): void {
  if (!task) return;
  byId('task-title').textContent = task.id;
  byId('task-status').replaceWith(Object.assign(statusBadge(task), { id: 'task-status' }));
  const progress = byId('task-progress');
  progress.style.width = `${task.progress}%`;
  progress.setAttribute('aria-valuenow', String(Math.floor(task.progress)));
  byId('task-step').textContent = task.error ? `${task.error.name}: ${task.error.message}` : (task.currentStep ?? '');
  byId<HTMLButtonElement>('cancel-button').disabled = TERMINAL.has(task.status) || task.cancelRequested;
  byId<HTMLButtonElement>('retry-button').disabled = !(task.status === 'failed' || task.status === 'cancelled');

  const stages = orderedStages(task.stages);
  const total = stages.reduce((sum, [, s]) => sum + (s.seconds ?? 0), 0);
  byId('timeline').replaceChildren(
    ...stages.filter(([, s]) => s.seconds != null).map(([id, s]) => {
      const d = h('div', { title: `${id}: ${s.seconds!.toFixed(2)} s`, textContent: id });
      d.style.flex = `${Math.max(s.seconds! / Math.max(total, 1e-9), 0.02)}`;
      d.style.background = STAGE_COLORS[id] ?? '#64748b';
      return d;
    }),
  );
  byId('stages').replaceChildren(
    ...stages.map(([id, s]) => {
      const cell = h('td', { className: 'bar-cell' }, bar(s.progress));
      return h('tr', { dataset: { stage: id, status: s.status } },
        h('td', { textContent: id }),
        h('td', { textContent: s.status }),
        cell,
        h('td', { textContent: `${Math.floor(s.progress)}%` }),
        h('td', { textContent: s.seconds != null ? `${s.seconds.toFixed(2)} s` : '' }));
    }),
  );
  const audioId = typeof task.params?.audioId === 'string' ? task.params.audioId : undefined;
  const done = stages.filter(([, s]) => s.status === 'completed').map(([id]) => id);
  const key = `${audioId}|${done.join(',')}`;
  if (audioId && done.length > 0 && key !== resultsKey) {
    resultsKey = key;
    void showResults(audioId, done);
  }
}

const notYet = (stage: string) => h('span', { className: 'muted', textContent: `not made: the ${stage} stage has not run` });

/** A result list, or a line saying which stage has not made it yet. */
function fill<T>(id: string, items: T[] | null, stage: string, item: (x: T) => HTMLElement): void {
  byId(id).replaceChildren(...(items ? items.map(item) : [h('li', { className: 'muted' }, notYet(stage))]));
}

function timeButton(seconds: number, label = clock(seconds)): HTMLButtonElement {
  const b = h('button', { type: 'button', className: 'time', textContent: label, dataset: { start: String(seconds) } });
  b.addEventListener('click', () => play(seconds));
  return b;
}

function play(seconds: number): void {
  const player = byId<HTMLAudioElement>('player');
  player.currentTime = seconds;
  void player.play().catch(() => undefined); // autoplay may be refused; the position is still set
}

async function showResults(audioId: string, done: string[]): Promise<void> {
  const key = resultsKey;
  let results: AudioResults;
  try {
    results = await api.results(audioId);
  } catch (error) {
    showError(error);
    return;
  }
  if (resultsKey !== key) return; // newer results were asked for meanwhile (more stages done, or another task)
  byId('results').hidden = false;
  if (done.includes('reassemble') && playerAudioId !== audioId) {
    playerAudioId = audioId;
    // Streamed: the player asks for the ranges it needs through a short-lived link, never the whole file at once.
    api.playbackUrl(audioId).then(({ url }) => {
      if (playerAudioId === audioId) byId<HTMLAudioElement>('player').src = url;
    }, showError);
  }
  showSubtitles(audioId, results);
  fill('chapters', results.chapters, 'chapters', (c) => h('li', { dataset: { chapter: String(c.index) } }, timeButton(c.startSeconds, `${clock(c.startSeconds)}–${clock(c.endSeconds)}`), ` ${c.title}`, h('div', { className: 'muted', textContent: c.summary.join(' ') })));
  fill('questions', results.questions, 'questions', (q) => h('li', {}, q.prompt, ' ', timeButton(q.startSeconds), h('details', {}, h('summary', { textContent: 'answer' }), q.answer)));
  fill('chunks', results.chunks, 'chunk', (c) => h('li', {}, timeButton(c.startSeconds, `${clock(c.startSeconds)}–${clock(c.endSeconds)}`), ` ${c.wordCount} words · ${c.topTerms.join(', ')}`));
  const words = results.transcript?.words;
  const t = results.transcript;
  byId('transcript-meta').textContent = t
    ? `· ${t.engine} · language ${t.language}${t.languageProbability !== undefined ? ` (detected, ${(t.languageProbability * 100).toFixed(1)}%)` : ''}`
    : '';
  wordSpans = [];
  playing = undefined;
  byId('transcript').replaceChildren(
    ...(words ?? []).flatMap((w) => {
      const b = h('button', { type: 'button', className: 'word', textContent: w.word, title: `${w.start.toFixed(2)} s`, dataset: { start: String(w.start) } });
      b.addEventListener('click', () => play(w.start));
      wordSpans.push({ start: w.start, end: w.end, el: b });
      return [b, ' '];
    }),
    ...(words ? [] : [notYet('transcribe')]),
  );
  if (results.graph) drawGraph(byId('graph'), results.graph);
  else byId('graph').replaceChildren(notYet('graph'));
}

/** Object URLs of the subtitles track and of the last download, revoked when replaced. */
let subtitlesUrl: { audioId: string; url: string } | undefined;

/**
 * The transcript's WebVTT as the player's subtitle track (fetched with the ID token, which `<track src>` cannot send,
 * then handed over as an object URL), and the download buttons for this recording.
 */
function showSubtitles(audioId: string, results: AudioResults): void {
  const downloads = byId('downloads');
  downloads.hidden = !results.transcript;
  downloads.dataset.audioId = audioId;
  if (!results.transcript || subtitlesUrl?.audioId === audioId) return;
  void api.subtitles(audioId, 'vtt').then((vtt) => {
    if (!resultsKey.startsWith(`${audioId}|`)) return;
    if (subtitlesUrl) URL.revokeObjectURL(subtitlesUrl.url);
    subtitlesUrl = { audioId, url: URL.createObjectURL(new Blob([vtt], { type: 'text/vtt' })) };
    const track = byId<HTMLTrackElement>('subtitles');
    track.srclang = results.transcript!.language.split('-')[0] || 'und';
    track.src = subtitlesUrl.url;
  }, showError);
}

async function download(audioId: string, format: 'vtt' | 'srt' | 'md' | 'json'): Promise<void> {
  const text = format === 'vtt' || format === 'srt' ? await api.subtitles(audioId, format) : format === 'md' ? resultsMarkdown(await api.results(audioId)) : JSON.stringify(await api.results(audioId), null, 2);
  const url = URL.createObjectURL(new Blob([text], { type: format === 'json' ? 'application/json' : 'text/plain' }));
  const a = h('a', { href: url, download: `${audioId}.${format}` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function route(): void {
  const match = /^#\/tasks\/([\w.:-]+)$/.exec(location.hash);
  const id = match?.[1];
  if (id === shownTaskId) return;
  stopTask?.();
  stopTask = undefined;
  shownTaskId = id;
  resultsKey = '';
  byId('task-view').hidden = !id;
  byId('empty-view').hidden = Boolean(id);
  byId('results').hidden = true;
  for (const li of document.querySelectorAll<HTMLElement>('#task-list li')) li.classList.toggle('selected', li.dataset.taskId === id);
  if (id) stopTask = watchTask(session.db, id, renderTask, showError);
}

async function upload(file: File): Promise<void> {
  const status = byId('upload-status');
  const bar = byId<HTMLProgressElement>('upload-progress');
  const text = byId('upload-text');
  status.hidden = false;
  bar.value = 0;
  text.textContent = `reading ${file.name}`;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const audioId = await api.upload(bytes, {
      contentType: file.type || 'application/octet-stream',
      chunkBytes: 256 * 1024,
      onProgress: (p) => {
        bar.value = Math.floor((p.bytesSent / p.totalBytes) * 100);
        text.textContent = `${file.name}: chunk ${p.chunksSent}/${p.chunkCount}`;
      },
    });
    text.textContent = `${file.name}: uploaded, starting`;
    const started = await api.process(audioId);
    text.textContent = `${file.name}: uploaded; task ${started.taskId} started (about ${Math.max(1, Math.round(started.estimatedSeconds))} s)`;
    location.hash = `#/tasks/${started.taskId}`;
  } catch (error) {
    text.textContent = `${file.name}: failed`;
    showError(error instanceof ApiCallError ? `upload refused (${error.code}): ${error.message}` : error);
  }
}

async function act(action: 'cancel' | 'retry'): Promise<void> {
  if (!shownTaskId) return;
  try {
    await api[action](shownTaskId);
  } catch (error) {
    showError(error);
  }
}

async function start(): Promise<void> {
  const config = await fetchClientConfig(location.origin);
  session = await connectClient(config, { name: 'dashboard' });
  api = fireflowApi({ baseUrl: location.origin, idToken: session.idToken });
  byId('user').textContent = `signed in as ${session.user.email}${config.emulators ? ' (Auth emulator)' : ''}`;
  watchTasks(session.db, { ownerUid: session.user.uid, type: PIPELINE, limit: 20 }, renderList, showError);
  byId<HTMLInputElement>('upload-input').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (file) void upload(file).finally(() => (input.value = ''));
  });
  byId('downloads').addEventListener('click', (e) => {
    const format = (e.target as HTMLElement).dataset.format as 'vtt' | 'srt' | 'md' | 'json' | undefined;
    const audioId = byId('downloads').dataset.audioId;
    if (format && audioId) download(audioId, format).catch(showError);
  });
  const player = byId<HTMLAudioElement>('player');
  for (const event of ['timeupdate', 'seeked']) player.addEventListener(event, () => highlightAt(player.currentTime));
  byId('cancel-button').addEventListener('click', () => void act('cancel'));
  byId('retry-button').addEventListener('click', () => void act('retry'));
  window.addEventListener('hashchange', route);
  route();
  document.body.dataset.ready = 'true';
}

start().catch(showError);
