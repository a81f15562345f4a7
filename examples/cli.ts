/**
 * Command-line flags for the examples: `--name value` or `--name=value`, each declared with
 * a default and a line of help; `--help` prints the usage and exits, and an unknown flag is
 * an error that lists the known ones.
 */

/** One flag: its default value (as text) and what it does; a switch takes no value. */
export interface FlagSpec {
  default: string;
  help: string;
  /** A switch: present means "true" (default "false"). */
  switch?: boolean;
}

/** Parses `Deno.args` against `spec`; on `--help` prints `usage` and the flags, then exits. */
export function parseFlags<K extends string>(
  usage: string,
  spec: Record<K, FlagSpec>,
  args: readonly string[] = Deno.args,
): Record<K, string> {
  const names = Object.keys(spec) as K[];
  if (args.includes("--help") || args.includes("-h")) {
    const width = Math.max(...names.map((n) => n.length)) + 2;
    console.log(usage.trim() + "\n\nFlags:");
    for (const n of names) {
      const s = spec[n];
      console.log(
        `  --${n.padEnd(width)}${s.help}${s.switch ? "" : ` (default: ${s.default || '""'})`}`,
      );
    }
    console.log(`  --${"help".padEnd(width)}print this help and exit`);
    Deno.exit(0);
  }
  const out = Object.fromEntries(names.map((n) => [n, spec[n].default])) as Record<K, string>;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    // `deno task name -- --flag` passes the "--" through: skip it
    if (a === "--") continue;
    if (!a.startsWith("--")) throw new TypeError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf("=");
    const name = (eq >= 0 ? a.slice(2, eq) : a.slice(2)) as K;
    if (!names.includes(name)) {
      throw new TypeError(
        `unknown flag --${name}; known flags: ${names.map((n) => `--${n}`).join(", ")}, --help`,
      );
    }
    if (spec[name].switch) out[name] = eq >= 0 ? a.slice(eq + 1) : "true";
    else if (eq >= 0) out[name] = a.slice(eq + 1);
    else if (i + 1 < args.length) out[name] = args[++i];
    else throw new TypeError(`flag --${name} needs a value`);
  }
  return out;
}

/** Writes a one-line progress display on a terminal (rewritten in place); silent otherwise. */
export function progressLine(text: string): void {
  if (!Deno.stdout.isTerminal()) return;
  const enc = new TextEncoder();
  Deno.stdout.writeSync(enc.encode(`\r\x1b[2K${text}`));
}

/** Ends a progress line (moves to the next line on a terminal). */
export function progressDone(): void {
  if (Deno.stdout.isTerminal()) Deno.stdout.writeSync(new TextEncoder().encode("\r\x1b[2K"));
}

/** The `--force` switch of every example that writes a file. */
export const FORCE: FlagSpec = {
  default: "false",
  help: "overwrite the --out file if it exists (otherwise an existing file is an error)",
  switch: true,
};

/**
 * Refuses, before any work, to overwrite an existing output file unless `--force` was given:
 * a rerun never silently replaces a picture someone kept.
 */
export function claimOutput(path: string, force: string): void {
  let exists = true;
  try {
    Deno.statSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    exists = false;
  }
  if (exists && force !== "true") {
    console.error(`${path} exists; pass --force to overwrite it, or --out another file`);
    Deno.exit(1);
  }
}
