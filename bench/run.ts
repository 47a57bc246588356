/**
 * `npm run bench`: runs every benchmark module in this folder and prints its figures. Benchmarks
 * print numbers; they are not tests and assert nothing. Run one with `npm run bench -- <name>`.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

interface BenchModule {
  /** One line saying what is measured. */
  title: string;
  run(): Promise<void>;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((file) => /\.bench\.(ts|js)$/.test(file))
    .sort();
  for (const file of files) {
    const name = file.replace(/\.bench\.(ts|js)$/, '');
    if (only.length > 0 && !only.includes(name)) continue;
    const mod = (await import(path.join(__dirname, file))) as BenchModule;
    process.stdout.write(`\n## ${name}: ${mod.title}\n`);
    await mod.run();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
