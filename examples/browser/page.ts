// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The demo page: starts the training Worker, draws the loss curve, lists the
// checkpoints in OPFS (each can be downloaded), and watches its own frames
// (the longest gap between requestAnimationFrame callbacks while a save was
// being written). URL parameters: dir (OPFS folder, "demo"), epochs (40),
// width (hidden units, 32), async (1: background saves). What it saw is
// published as globalThis.__demo for the browser test.
/// <reference lib="dom" />

import { OpfsStore } from "../../browser.ts";
import type { TrainMessage, TrainRequest } from "./train_worker.ts";

const params = new URL(location.href).searchParams;
const dirName = (params.get("dir") ?? "demo").replace(/[^\w-]/g, "");
const request: TrainRequest = {
  directory: `opfs:/${dirName}`,
  epochs: Number(params.get("epochs") ?? 40),
  width: Number(params.get("width") ?? 32),
  asyncSave: params.get("async") !== "0",
};
const checkpointDir = `${request.directory}/checkpoint/rank_0`;
const historyKey = `ckpt-demo-losses:${dirName}`;
const store = new OpfsStore();

/** What the test reads. */
interface DemoState {
  initialEpoch: number | null;
  stepsPerEpoch: number | null;
  parameters: number | null;
  /** Loss of each epoch trained on this page (epoch number → loss). */
  losses: Record<number, number>;
  saves: { file: string; step: number; bytes: number; ms: number }[];
  /** Longest gap between frames overlapping a save's write (ms). */
  maxFrameGapDuringSaves: number;
  /** Longest gap between frames while training, not during a save (ms). */
  maxFrameGapOutsideSaves: number;
  /** Longest gap between frames while training (ms). */
  maxFrameGap: number;
  /** Median gap between frames while training (ms). */
  medianFrameGap: number;
  frames: number;
  /** The longest gap not during a save: when (ms after training began), and the messages that arrived in it. */
  longestOutside: { at: number; ms: number; messages: string[] } | null;
  error: string | null;
  done: boolean;
}

const state: DemoState = {
  initialEpoch: null,
  stepsPerEpoch: null,
  parameters: null,
  losses: {},
  saves: [],
  maxFrameGapDuringSaves: 0,
  maxFrameGapOutsideSaves: 0,
  maxFrameGap: 0,
  medianFrameGap: 0,
  frames: 0,
  longestOutside: null,
  error: null,
  done: false,
};

/** Reads an OPFS file as base64 (the test downloads checkpoints so). */
async function readBase64(path: string): Promise<string> {
  const bytes = await store.readFile(path, 1 << 30);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** The final weights (Float32Arrays from the Worker), once done. */
let finalWeights: Record<string, Float32Array> | null = null;

(globalThis as { __demo?: unknown }).__demo = {
  state,
  readBase64,
  weights: () =>
    finalWeights === null ? null : Object.fromEntries(
      Object.entries(finalWeights).map(([k, v]) => [k, Array.from(v)]),
    ),
  checkpointDir,
};

const $ = (id: string) => document.getElementById(id)!;

// --- the loss curve --------------------------------------------------------

/** Losses of earlier page loads of this run, kept in localStorage. */
let history: Record<number, number> = JSON.parse(
  localStorage.getItem(historyKey) ?? "{}",
);

function draw(): void {
  const canvas = $("curve") as HTMLCanvasElement;
  const g = canvas.getContext("2d")!;
  const w = canvas.width, h = canvas.height, pad = 36;
  g.clearRect(0, 0, w, h);
  const all = { ...history, ...state.losses };
  const epochs = Object.keys(all).map(Number);
  const top = Math.max(...Object.values(all), 1e-3);
  const x = (e: number) =>
    pad + (e - 1) / Math.max(1, request.epochs - 1) *
      (w - 2 * pad);
  const y = (l: number) => h - pad - l / top * (h - 2 * pad);
  g.strokeStyle = "#999";
  g.beginPath();
  g.moveTo(pad, pad / 2);
  g.lineTo(pad, h - pad);
  g.lineTo(w - pad / 2, h - pad);
  g.stroke();
  g.fillStyle = "#666";
  g.font = "12px system-ui";
  g.fillText(top.toPrecision(2), 2, pad / 2 + 8);
  g.fillText("0", pad - 12, h - pad);
  g.fillText("epoch", w - pad - 30, h - pad + 24);
  g.fillText(String(request.epochs), x(request.epochs) - 6, h - pad + 14);
  if (state.initialEpoch !== null && state.initialEpoch > 0) {
    g.strokeStyle = "#0a6b2b";
    g.setLineDash([4, 4]);
    g.beginPath();
    g.moveTo(x(state.initialEpoch), pad / 2);
    g.lineTo(x(state.initialEpoch), h - pad);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = "#0a6b2b";
    g.fillText("resumed", x(state.initialEpoch) + 4, pad / 2 + 8);
  }
  for (
    const [series, colour] of [[history, "#aaa"], [
      state.losses,
      "#1f5fbf",
    ]] as const
  ) {
    g.fillStyle = colour;
    for (const e of epochs) {
      const l = series[e];
      if (l === undefined) continue;
      g.beginPath();
      g.arc(x(e), y(l), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }
}

// --- the checkpoints in OPFS -----------------------------------------------

let listing: Promise<void> = Promise.resolve();

/** Redraws the table of checkpoints (one listing at a time, newest first). */
function listCheckpoints(): Promise<void> {
  listing = listing.then(listOnce, listOnce);
  return listing;
}

async function listOnce(): Promise<void> {
  const entries = (await store.list(checkpointDir)) ?? [];
  const names = entries.filter((e) =>
    e.kind === "file" && e.name.endsWith(".ckpt")
  ).map((e) => e.name).sort((a, b) => stepOf(b) - stepOf(a));
  const rows: HTMLTableRowElement[] = [];
  for (const name of names) {
    const path = `${checkpointDir}/${name}`;
    const stat = await store.stat(path);
    if (stat === null) continue; // removed meanwhile
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.textContent = "download";
    link.href = "#";
    link.onclick = async (event) => {
      event.preventDefault();
      const bytes = await store.readFile(path, 1 << 30);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(
        new Blob([bytes as Uint8Array<ArrayBuffer>]),
      );
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    };
    row.innerHTML = `<td>${name}</td><td class="n">${stepOf(name)}</td>` +
      `<td class="n">${stat.size}</td><td></td>`;
    row.lastElementChild!.append(link);
    rows.push(row);
  }
  $("checkpoints").replaceChildren(...rows);
}

/**
 * The epoch and the step within it in a checkpoint's name
 * (`CKP_rank_0-3_8.ckpt`: the end of epoch 3's 8th step), as one number
 * for sorting and showing: the global step when steps per epoch are known.
 */
function stepOf(name: string): number {
  const m = /-(\d+)_(\d+)(?:_breakpoint)?\.ckpt$/.exec(name);
  if (m === null) return NaN;
  const spe = state.stepsPerEpoch ?? 0;
  return (Number(m[1]) - 1) * spe + Number(m[2]);
}

$("clear").onclick = async () => {
  worker.terminate();
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(dirName, { recursive: true }).catch(() => {});
  localStorage.removeItem(historyKey);
  location.reload();
};

// --- frames ----------------------------------------------------------------

const frameTimes: number[] = [];
function frame(t: number): void {
  frameTimes.push(performance.timeOrigin + t);
  if (!state.done) requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

/**
 * The longest gaps between frames while training: overlapping a save's
 * write, and not; and the median gap (the display's frame interval).
 */
function frameGaps(windows: { start: number; end: number }[]): void {
  let during = 0, outside = 0;
  const gaps: number[] = [];
  for (let i = 1; i < frameTimes.length; i++) {
    const a = frameTimes[i - 1]!, b = frameTimes[i]!;
    if (a < trainingStart) continue;
    gaps.push(b - a);
    if (windows.some((w) => a < w.end && b > w.start)) {
      during = Math.max(during, b - a);
    } else if (b - a > outside) {
      outside = b - a;
      state.longestOutside = {
        at: a - trainingStart,
        ms: b - a,
        messages: arrivals.filter((m) => m.t >= a && m.t <= b).map((m) =>
          m.type
        ),
      };
    }
  }
  gaps.sort((x, y) => x - y);
  state.frames = gaps.length;
  state.medianFrameGap = gaps[gaps.length >> 1] ?? 0;
  state.maxFrameGap = Math.max(during, outside);
  state.maxFrameGapOutsideSaves = outside;
  state.maxFrameGapDuringSaves = during;
  $("frames").textContent = `${gaps.length} frames while training ` +
    `(median gap ${state.medianFrameGap.toFixed(1)} ms); longest gap ` +
    `${during.toFixed(1)} ms during the ${windows.length} saves' writes, ` +
    `${outside.toFixed(1)} ms otherwise`;
}

// --- the training Worker ---------------------------------------------------

const windows: { start: number; end: number }[] = [];
/** When the Worker said training starts (`timeOrigin + now()`, ms). */
let trainingStart = Infinity;
const worker = new Worker(new URL("./train_worker.js", location.href), {
  type: "module",
});
/** When each message arrived (to tell what a long frame gap held). */
const arrivals: { t: number; type: string }[] = [];
worker.onmessage = (event: MessageEvent<TrainMessage>) => {
  const m = event.data;
  arrivals.push({
    t: performance.timeOrigin + performance.now(),
    type: m.type,
  });
  switch (m.type) {
    case "start": {
      trainingStart = performance.timeOrigin + performance.now();
      state.initialEpoch = m.initialEpoch;
      state.stepsPerEpoch = m.stepsPerEpoch;
      state.parameters = m.parameters;
      // What came after the checkpoint resumed from is trained again.
      history = Object.fromEntries(
        Object.entries(history).filter(([e]) => Number(e) <= m.initialEpoch),
      );
      $("status").textContent = m.initialEpoch === 0
        ? `Fresh start: no checkpoint in ${request.directory} (${m.parameters} parameters).`
        : `Resumed from the checkpoint of epoch ${m.initialEpoch} (step ${
          m.initialEpoch * m.stepsPerEpoch
        }); training epochs ${m.initialEpoch + 1} to ${request.epochs}.`;
      $("status").className = m.initialEpoch === 0 ? "" : "resumed";
      draw();
      break;
    }
    case "epoch":
      state.losses[m.epoch] = m.loss;
      localStorage.setItem(
        historyKey,
        JSON.stringify({ ...history, ...state.losses }),
      );
      draw();
      break;
    case "saved":
      state.saves.push({
        file: m.file,
        step: m.step,
        bytes: m.bytes,
        ms: m.end - m.start,
      });
      windows.push({ start: m.start, end: m.end });
      void listCheckpoints().catch(() => {});
      break;
    case "removed":
      void listCheckpoints().catch(() => {});
      break;
    case "done":
      finalWeights = m.weights;
      state.done = true;
      frameGaps(windows);
      if (state.initialEpoch === null) state.initialEpoch = request.epochs;
      $("status").textContent += " Done.";
      void listCheckpoints().catch(() => {});
      worker.terminate();
      break;
    case "error":
      state.error = m.message;
      $("status").textContent = `Failed: ${m.message}`;
      break;
  }
};
worker.onerror = (event) => {
  state.error = `the training Worker failed: ${event.message}`;
  $("status").textContent = state.error;
};

await listCheckpoints();
draw();
worker.postMessage(request);
