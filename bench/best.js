// The statistic every suite reports: each benny sample is the mean time of one
// block of calls, and a figure is the fastest block's, the same statistic the
// native and kernel helpers report (the best round of a block of calls), so a
// ratio compares like with like on a machine whose other tenants come and go.
// The mean over all samples is kept beside it.

/** Per-operation nanoseconds by case name: { ns (fastest sample), meanNs }; `per` operations per call. */
export function perOp(summary, per = 1) {
  return Object.fromEntries(summary.results.map((r) => [r.name, { ns: (r.details.min * 1e9) / per, meanNs: 1e9 / (r.ops * per) }]));
}
