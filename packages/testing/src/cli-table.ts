/** Test support: the numbers of the `total` row of a CLI summary table (cli-table3 borders). */
export function tableTotals(out: string): number[] {
  const row = out.split('\n').find((l) => /│\s*total\s*│/.test(l));
  if (row === undefined) throw new Error(`no total row in:\n${out}`);
  return row
    .split('│')
    .map((c) => c.trim())
    .filter((c) => /^\d+$/.test(c))
    .map(Number);
}
