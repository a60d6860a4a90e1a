// The live status line of a long step (a snapshot written or restored, a
// migration sent or received): one line on stderr rewritten in place, for a
// terminal only — piped or redirected, stderr keeps just the final lines.

/** What the line writes to (process.stderr). */
export interface LineStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressLine {
  /** Shows `text()` unless the line was drawn less than 100 ms ago (text is built only when drawn). */
  show(text: () => string): void;
  /** Erases the line, if it was drawn. */
  clear(): void;
}

/** Redraws at most every this many ms: figures that change per message would otherwise flood a terminal. */
const EVERY_MS = 100;

export function progressLine(stream: LineStream = process.stderr, now: () => number = () => performance.now()): ProgressLine {
  let shown = -Infinity;
  let drawn = false;
  return {
    show(text) {
      if (!stream.isTTY) return;
      const t = now();
      if (t - shown < EVERY_MS) return;
      shown = t;
      drawn = true;
      stream.write(`\r\x1b[Kwebkvm: ${text()}`);
    },
    clear() {
      if (!drawn) return;
      drawn = false;
      shown = -Infinity;
      stream.write("\r\x1b[K");
    },
  };
}

export const kib = (bytes: number): string => (bytes / 1024).toFixed(0);
