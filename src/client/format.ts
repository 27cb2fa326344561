// Browser and Node: how the CLI and the dashboard show tasks and times.

/** `m:ss` of a position in a recording (seconds, rounded down). */
export const clock = (seconds: number) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;

/** A pipeline's selected stages in their order, as `[id, stage]` pairs (the stored map has no order). */
export function orderedStages<S extends { index: number; selected?: boolean }>(stages: Record<string, S> | null | undefined): [string, S][] {
  return Object.entries(stages ?? {})
    .filter(([, s]) => s.selected !== false)
    .sort(([, a], [, b]) => a.index - b.index);
}
