// The dashboard in Chromium (playwright-core driving Debian's chromium, located or installed by `npm test`): upload a
// recording from the page, watch its task move live, see the results; cancel a running task from the page.
// Screenshots go to test-artifacts/.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboard } from '../scripts/build-dashboard.mjs';
import { startLocalServer, type LocalServer } from '../src/cli/serve.js';
import { createLogger } from '../src/core/logger.js';
import { librivoxRecording } from './helpers.js';
import { signUpUser } from './api-harness.js';
import { createUpload } from '../src/audio/record.js';

// The callbacks passed to page.evaluate run in the page; these names are the page's (declared here for this module
// only, so the DOM types do not leak into the Node-typed rest of the project).
declare const document: any, window: any, location: any, MutationObserver: any;

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
/** What Chromium needs to start as root in a container with no network (see DEVELOPERS.md). */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server: LocalServer;
let browser: Browser;
let dir: string;
/** The bundled LibriVox clips joined (25 s), and three times over (75 s) for the cancel test. */
let chapter: string;
let longer: string;

beforeAll(async () => {
  const executablePath = process.env.FIREFLOW_CHROMIUM;
  if (!executablePath) throw new Error('FIREFLOW_CHROMIUM is not set: run with `npm test` (it locates or installs Chromium)');
  dir = await mkdtemp(join(tmpdir(), 'fireflow-dashboard-'));
  chapter = librivoxRecording(join(dir, 'chapter.wav'));
  longer = librivoxRecording(join(dir, 'longer.wav'), 3);
  await ensureDashboard();
  server = await startLocalServer({ port: 0, projectId: `demo-dashboard-${randomBytes(3).toString('hex')}`, dataDir: join(dir, 'data'), handleSignals: false, logger: createLogger({ silent: true }) });
  expect(server.dashboardBuilt).toBe(true);
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  await mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function openDashboard(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 }).catch((e: unknown) => {
    throw new Error(`the dashboard did not start: ${errors.join('; ') || (e as Error).message}`);
  });
  // Every value the task's progress bar and the upload line take, recorded in the page as it happens.
  await page.evaluate(() => {
    const bar = document.getElementById('task-progress');
    const seen: number[] = ((window as any).seenProgress = []);
    new MutationObserver(() => {
      const v = Number(bar.getAttribute('aria-valuenow'));
      if (seen.at(-1) !== v) seen.push(v);
    }).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
    const upload = document.getElementById('upload-text');
    const lines: string[] = ((window as any).seenUpload = []);
    new MutationObserver(() => lines.push(upload.textContent ?? '')).observe(upload, { childList: true, characterData: true, subtree: true });
  });
  return page;
}

const shownTaskId = (page: Page) => page.evaluate(() => /^#\/tasks\/(.+)$/.exec(location.hash)?.[1]);

describe('dashboard', () => {
  it('uploads a recording with per-chunk progress, shows its task moving live, then chapters, questions, transcript and graph', async () => {
    const page = await openDashboard();
    await page.setInputFiles('#upload-input', chapter);
    await page.waitForFunction(() => location.hash.startsWith('#/tasks/'), null, { timeout: 30_000 });
    // 773 KiB in 256 KiB chunks: the page reported each of the 4 as it was stored.
    const uploadLines = (await page.evaluate(() => (window as any).seenUpload)) as string[];
    expect(uploadLines.filter((l) => / chunk \d\/4$/.test(l)).map((l) => l.slice(-3))).toEqual(['0/4', '1/4', '2/4', '3/4', '4/4']);
    const taskId = await shownTaskId(page);
    await page.waitForSelector('#task-status.completed', { timeout: 90_000 });

    const seen = (await page.evaluate(() => (window as any).seenProgress)) as number[];
    expect(new Set(seen).size, `progress values seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toBe(100);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen); // it never went back

    await page.waitForSelector('#chapters li[data-chapter]', { timeout: 30_000 });
    const chapters = await page.locator('#chapters li[data-chapter]').allTextContents();
    expect(chapters.length).toBeGreaterThanOrEqual(1);
    expect(chapters[0]).toMatch(/^0:00–\d+:\d\d \S/);
    expect(await page.locator('#questions li details').count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#transcript button.word').count()).toBeGreaterThan(20);
    // Whisper's transcript (npm test installs it): punctuated, with the language it detected.
    expect(await page.locator('#transcript-meta').textContent()).toMatch(/^· whisper:base · language en \(detected, \d+\.\d%\)$/);
    expect((await page.locator('#transcript button.word').allTextContents()).some((w) => /\w[.,;!?]$/.test(w))).toBe(true);
    expect(await page.locator('#graph svg circle').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#stages tr[data-status="completed"]').count()).toBe(6);
    // The task list (its own listener) shows the same task, completed.
    await page.waitForSelector(`#task-list li[data-task-id="${taskId}"][data-status="completed"]`, { timeout: 10_000 });
    // A word's time button seeks the player, whose audio came from GET /audio/:id/speech.
    const word = page.locator('#transcript button.word').nth(10);
    const start = Number(await word.getAttribute('data-start'));
    await word.click();
    const position = await page.evaluate(() => document.getElementById('player').currentTime);
    expect(Math.abs(position - start)).toBeLessThan(0.1);
    // ...and the word under the playhead is highlighted (it may have moved on if playback started).
    await page.waitForSelector('#transcript button.word.playing', { timeout: 5_000 });
    expect(Number(await page.locator('#transcript button.word.playing').getAttribute('data-start'))).toBeGreaterThanOrEqual(start);
    // The player's subtitle track: the API's WebVTT, parsed by Chromium into cues that cover the transcript.
    const cues = await page.waitForFunction(
      () => {
        const track = (document.getElementById('player') as any).textTracks[0];
        if (!track) return null;
        track.mode = 'hidden'; // cues load once the track is not disabled
        const list: { start: number; end: number; text: string }[] = track.cues ? [...track.cues].map((c: any) => ({ start: c.startTime, end: c.endTime, text: c.text })) : [];
        return list.length ? list : null;
      },
      undefined,
      { timeout: 10_000 },
    );
    const loaded = (await cues.jsonValue()) as { start: number; end: number; text: string }[];
    const words = await page.locator('#transcript button.word').allTextContents();
    expect(loaded.map((c) => c.text.replace(/\n/g, ' ')).join(' ')).toBe(words.join(' '));
    for (const c of loaded) {
      expect(c.end - c.start).toBeLessThanOrEqual(7);
      for (const line of c.text.split('\n')) expect(line.length).toBeLessThanOrEqual(42);
    }
    // The downloads: a Markdown file of this recording's results.
    const [file] = await Promise.all([page.waitForEvent('download'), page.locator('#downloads button[data-format="md"]').click()]);
    expect(file.suggestedFilename()).toMatch(/\.md$/);
    expect(await readFile((await file.path())!, 'utf8')).toMatch(/^# Recording \S+\n[\s\S]*## Transcript\n/);
    expect((await server.fireflow.get(taskId!)).status).toBe('completed');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-completed.png'), fullPage: true });
    await page.close();
  }, 180_000);

  it('cancels a running task from the page, and retries it to completion', async () => {
    const page = await openDashboard();
    await page.setInputFiles('#upload-input', longer);
    await page.waitForFunction(() => location.hash.startsWith('#/tasks/'), null, { timeout: 30_000 });
    const taskId = await shownTaskId(page);
    await page.waitForSelector('#stages tr[data-stage="transcribe"][data-status="running"]', { timeout: 60_000 });
    await page.click('#cancel-button');
    await page.waitForSelector('#task-status.cancelled', { timeout: 30_000 });
    expect(await page.locator('#retry-button').isEnabled()).toBe(true);
    expect(await page.locator('#cancel-button').isDisabled()).toBe(true);
    const task = await server.fireflow.get(taskId!);
    expect(task.status).toBe('cancelled');
    expect(task.stages?.transcribe?.status).toBe('cancelled');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-cancelled.png'), fullPage: true });

    await page.click('#retry-button');
    await page.waitForSelector('#task-status.completed', { timeout: 120_000 });
    const retried = await server.fireflow.get(taskId!);
    expect(retried.status).toBe('completed');
    expect(retried.stages?.reassemble?.status).toBe('completed'); // resumed at the stage that stopped it
    await page.close();
  }, 180_000);

  it('the player streams: playing an hour-long recording from the middle reads a fraction of it, through a playback link', async () => {
    // An hour of 16 kHz mono WAV (115 MB) stored as a reassembled recording of a user of its own.
    const user = await signUpUser('streaming');
    const wav = join(dir, 'an-hour.wav');
    expect(spawnSync('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', wav, 'synth', '3600', 'pinknoise', 'vol', '0.1']).status).toBe(0);
    const bytes = await readFile(wav);
    const record = await createUpload(server.db, { contentType: 'audio/wav', chunkCount: 1, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }, { ownerUid: user.uid });
    const speechKey = `audio/${record.id}/speech.wav`;
    await server.blobs.put(speechKey, bytes);
    await server.db.doc(`audio/${record.id}`).update({ speechKey });
    const link = await fetch(`${server.url}/audio/${record.id}/playback`, { method: 'POST', headers: { authorization: `Bearer ${user.token}` } });
    const { path } = (await link.json()) as { path: string };
    // What the server sends for the link, per request, whatever ranges Chromium asks for.
    const requests: { start: number; sent: number }[] = [];
    const count = (req: IncomingMessage, res: ServerResponse) => {
      if (!req.url?.startsWith(`/audio/${record.id}/stream`)) return;
      const r = { start: Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0), sent: 0 };
      requests.push(r);
      const write = res.write.bind(res) as (...a: unknown[]) => boolean;
      res.write = ((chunk: Buffer | string, ...rest: unknown[]) => ((r.sent += Buffer.byteLength(chunk)), write(chunk, ...rest))) as typeof res.write;
    };
    server.server.on('request', count);
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/healthz`);
      const position = await page.evaluate(async (src: string) => {
        const audio = document.createElement('audio');
        audio.preload = 'metadata';
        audio.muted = true; // muted media may play without a user gesture
        audio.src = src;
        document.body.append(audio);
        await new Promise((resolve, reject) => ((audio.onloadedmetadata = resolve), (audio.onerror = () => reject(new Error(`media error ${audio.error?.code}`)))));
        audio.currentTime = 1800;
        await audio.play();
        await new Promise<void>((resolve) => {
          const check = () => (audio.currentTime > 1801 ? resolve() : setTimeout(check, 50));
          check();
        });
        return { currentTime: audio.currentTime, duration: audio.duration };
      }, `${server.url}${path}`);
      expect(position.duration).toBeCloseTo(3600, 0);
      expect(position.currentTime).toBeGreaterThan(1800);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      server.server.off('request', count);
      await page.close();
    }
    // Chromium asked for the middle, and what crossed the wire is a fraction of the hour. (It reads ahead as fast as
    // loopback allows, from the start until it seeks and past the playhead after, so the fraction varies from run to run.)
    const total = requests.reduce((sum, r) => sum + r.sent, 0);
    console.log(`streamed ${total} of ${bytes.length} bytes in ${requests.length} requests: ${JSON.stringify(requests)}`);
    expect(requests.some((r) => r.start >= 0.45 * bytes.length && r.start <= 0.5 * bytes.length), JSON.stringify(requests)).toBe(true);
    expect(total, JSON.stringify(requests)).toBeLessThan(bytes.length / 2);
  }, 120_000);
});

