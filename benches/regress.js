// The summary of benches/regress.sh: reads criterion's saved baselines (base1, head, base2)
// and change estimates (changes/noise, changes/head-vs-base1, changes/head-vs-base2) under
// WORK, prints a markdown table and ratio table, and exits 1 when a bench regressed beyond
// the noise measured between the two base runs.
//
//   node benches/regress.js WORK BASE_NAME HEAD_NAME
'use strict';
const fs = require('fs');
const path = require('path');

const [work, baseName, headName] = process.argv.slice(2);
const floor = Number(process.env.REGRESS_FLOOR_PCT || '5') / 100;
const criterion = path.join(work, 'criterion');

// Every file named `name` below `dir`, by its directory relative to `dir`.
function findAll(dir, name, prefix = '', found = new Map()) {
  if (!fs.existsSync(dir)) return found;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) findAll(full, name, path.join(prefix, entry.name), found);
    else if (entry.name === name) found.set(prefix, JSON.parse(fs.readFileSync(full, 'utf8')));
  }
  return found;
}

// Mean time per iteration (ns) of each bench in a saved baseline.
function means(label) {
  const out = new Map();
  for (const [dir, estimates] of findAll(criterion, 'estimates.json')) {
    if (path.basename(dir) === label) out.set(path.dirname(dir), estimates.mean.point_estimate);
  }
  return out;
}

// Relative change of the mean, with its 95 % interval, per bench.
function changes(pair) {
  const out = new Map();
  for (const [bench, estimates] of findAll(path.join(work, 'changes', pair), 'estimates.json')) {
    const m = estimates.mean;
    out.set(bench, { point: m.point_estimate, lo: m.confidence_interval.lower_bound,
                     hi: m.confidence_interval.upper_bound });
  }
  return out;
}

const pct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const interval = (c) => (c ? `${pct(c.point)} [${pct(c.lo)}, ${pct(c.hi)}]` : 'n/a');
const time = (ns) => (ns === undefined ? 'n/a' : ns >= 1e6 ? `${(ns / 1e6).toFixed(3)} ms`
  : ns >= 1e3 ? `${(ns / 1e3).toFixed(3)} µs` : `${ns.toFixed(1)} ns`);

// A bench moved when HEAD's change against both base runs lies wholly beyond the noise.
function verdict(noise, vs1, vs2) {
  if (!vs1 || !vs2) return 'not compared';
  const beyond = (c, sign) => (sign > 0 ? c.lo > noise : c.hi < -noise);
  if (beyond(vs1, 1) && beyond(vs2, 1)) return 'REGRESSED';
  if (beyond(vs1, -1) && beyond(vs2, -1)) return 'improved';
  return 'within noise';
}

function table() {
  const [base1, head] = [means('base1'), means('head')];
  const [noise, vs1, vs2] = ['noise', 'head-vs-base1', 'head-vs-base2'].map(changes);
  const lines = [`## Wall clock: ${headName} against ${baseName} (base run twice)`, '',
    '| bench | base | head | head vs base run 1 | head vs base run 2 | base run 2 vs 1 (noise) | verdict |',
    '|---|---|---|---|---|---|---|'];
  let regressed = 0;
  for (const bench of [...new Set([...base1.keys(), ...head.keys()])].sort()) {
    const n = noise.get(bench);
    // The drift between two runs of the same code is the machine's run-to-run noise; each
    // comparison's own interval already carries the sampling noise within a run.
    const threshold = Math.max(floor, n ? Math.abs(n.point) : 0);
    const v = verdict(threshold, vs1.get(bench), vs2.get(bench));
    if (v === 'REGRESSED') regressed += 1;
    lines.push(`| ${bench} | ${time(base1.get(bench))} | ${time(head.get(bench))} | ` +
      `${interval(vs1.get(bench))} | ${interval(vs2.get(bench))} | ${interval(n)} ` +
      `(threshold ±${(threshold * 100).toFixed(1)} %) | ${v} |`);
  }
  return { lines, regressed };
}

// Comparison partners measured in the same run: their ratio does not depend on the machine.
const PARTNERS = [
  ['validate/single_msg', 'msg/ed25519_verify_bare', 'validation ÷ bare verify'],
  ['sync/full_10000', 'validate/10000', 'full sync ÷ validation (10,000 msgs)'],
  ['sync/incremental_100_on_10000', 'validate/100_on_10000', 'incremental sync ÷ validation'],
];

function ratios() {
  const runs = ['base1', 'head', 'base2'].map((label) => [label, means(label)]);
  const lines = ['', '## Ratios within each run', '', '| ratio | base run 1 | head | base run 2 |',
    '|---|---|---|---|'];
  for (const [num, den, name] of PARTNERS) {
    const cells = runs.map(([, m]) => (m.has(num) && m.has(den)
      ? (m.get(num) / m.get(den)).toFixed(3) : 'n/a'));
    if (cells.some((c) => c !== 'n/a')) lines.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  return lines;
}

const { lines, regressed } = table();
console.log([...lines, ...ratios(), '',
  regressed ? `${regressed} bench(es) REGRESSED beyond the measured noise.`
    : 'No bench moved beyond the measured noise.'].join('\n'));
process.exit(regressed ? 1 : 0);
