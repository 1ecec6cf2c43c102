// A Dockerfile read as instructions grouped by stage: continuation lines joined, comments dropped. Enough
// for the properties this repo reads from its own Dockerfiles (scripts/image-env.ts, the packaging tests);
// not a full parser (no parser directives, heredocs or escape-character changes).

export interface Instruction {
  op: string;
  args: string;
}

export function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of each stage, each starting with its FROM. */
export function stages(all: Instruction[]): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of all) {
    if (i.op === 'FROM') out.push([]);
    out.at(-1)?.push(i);
  }
  return out;
}
