// Checks that node_modules holds exactly the package versions package-lock.json pins, and that
// this Node.js satisfies every pinned package's `engines.node`, so a missing or stale install, or
// a package bumped to a release that needs a newer Node (the AI SDK 7 and @langchain/openai 1.5.9
// need 22), fails with instructions instead of an import error in every test.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// The comparator sets npm packages use in engines.node: `>=18.17`, `>= 20`, `^20.9.0 || >=22`,
// `>=18 <23`. Returns true, false, or null when `range` has a form this does not read.
function satisfies(version, range) {
  // [major, minor, patch], missing or wildcard parts 0, and how many parts were numbers.
  const parse = (text) => {
    const m = /^v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(text);
    if (!m) return null;
    const parts = [1, 2, 3].map((i) => (/^\d+$/.test(m[i] ?? '') ? Number(m[i]) : null));
    const given = parts.indexOf(null) === -1 ? 3 : parts.indexOf(null);
    return Object.assign(
      parts.map((n) => n ?? 0),
      { given },
    );
  };
  const compare = (a, b) => a.map((n, i) => n - b[i]).find((d) => d !== 0) ?? 0;
  const have = parse(version);
  if (have === null) return null;
  let readable = true;
  const anyOf = range.split('||').some((set) => {
    const comparators = set
      .trim()
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/);
    return comparators.every((comparator) => {
      if (comparator === '' || comparator === '*' || comparator === 'x') return true;
      const m = /^(>=|<=|>|<|=|\^|~)?(.+)$/.exec(comparator);
      const want = parse(m[2]);
      if (want === null) {
        readable = false;
        return false;
      }
      const c = compare(have, want);
      switch (m[1] ?? '=') {
        case '>=':
          return c >= 0;
        case '>':
          return c > 0;
        case '<=':
          return c <= 0;
        case '<':
          return c < 0;
        case '^':
          return c >= 0 && have[0] === want[0];
        case '~':
          return c >= 0 && have[0] === want[0] && have[1] === want[1];
        default:
          return have.slice(0, want.given).every((n, i) => n === want[i]);
      }
    });
  });
  return anyOf ? true : readable ? false : null;
}

function check() {
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
    if (installed !== entry.version) {
      problems.push(`${path} is ${installed}, package-lock.json pins ${entry.version}`);
    }
    const range = entry.engines?.node;
    if (range === undefined) continue;
    const ok = satisfies(process.version, range);
    if (ok === false) problems.push(`${path} ${entry.version} needs Node.js ${range}`);
    if (ok === null) problems.push(`${path}: cannot read its engines.node "${range}"`);
  }
  if (problems.length > 0) {
    console.error(
      `tests/e2e dependencies do not match package-lock.json or Node.js ${process.version}:\n  ` +
        `${problems.join('\n  ')}\n` +
        'Run `npm ci --no-audit --no-fund` in tests/e2e (scripts/setup.sh does this); for an ' +
        'engines mismatch pin a release that runs on the Node.js of scripts/setup.sh.',
    );
    process.exit(1);
  }
  console.log(
    `tests/e2e: ${Object.keys(lock.packages).length - 1} npm packages match package-lock.json ` +
      `and run on Node.js ${process.version}`,
  );
}

check();
