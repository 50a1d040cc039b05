// Listed in .mocharc.*.json next to each package's spec glob. Mocha exits 1 with "No test files
// found" when a glob matches nothing, which would fail `pnpm test:unit` / `pnpm test:int` for every
// package that has no tests of that kind yet; this empty module is always found instead.
export {};
