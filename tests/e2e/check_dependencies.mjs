// Checks that node_modules holds exactly the package versions package-lock.json pins, so a
// missing or stale install fails with instructions instead of an import error in every test.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const problems = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!path.startsWith('node_modules/') || entry.optional) continue;
  const manifest = join(path, 'package.json');
  if (!existsSync(manifest)) {
    problems.push(`${path} is missing (want ${entry.version})`);
    continue;
  }
  const installed = JSON.parse(readFileSync(manifest, 'utf8')).version;
  if (installed !== entry.version)
    problems.push(`${path} is ${installed}, package-lock.json pins ${entry.version}`);
}
if (problems.length > 0) {
  console.error(
    `tests/e2e dependencies do not match package-lock.json:\n  ${problems.join('\n  ')}\n` +
      'Run `npm ci --no-audit --no-fund` in tests/e2e (scripts/setup.sh does this).',
  );
  process.exit(1);
}
console.log(
  `tests/e2e: ${Object.keys(lock.packages).length - 1} npm packages match package-lock.json`,
);
