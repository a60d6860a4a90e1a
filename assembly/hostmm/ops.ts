// What the host mm calls in the layers above it, registered once at start-up
// (index.ts): the MMU-notifier callbacks (the kernel's mmu_notifier_ops) and a
// mapped file's operations (vm_operations_struct's fault, get_file / fput).
// Through these alone the host mm reaches KVM; it knows nothing else of it.
// None runs on a guest access that hits: invalidations come with munmap,
// mprotect and COW breaks, file faults with a file page's first touch through
// a VMA. Each is kept as its table index (Function#index) and called
// with call_indirect: holding no function object keeps the callers (hvaToLinear
// is on every fault path) free of the shadow-stack frame a managed reference costs.
function noRange(start: u64, end: u64): void {}
function noFileRef(file: usize): void {}
function noFileFault(file: usize, index: u64): usize { return 0; }
let invalidateRangeStartFn: u32 = noRange.index;
let invalidateRangeEndFn: u32 = noRange.index;
let fileGetFn: u32 = noFileRef.index;
let filePutFn: u32 = noFileRef.index;
let fileUserFaultFn: u32 = noFileFault.index;

// @ts-ignore: decorator
@inline export function mmuNotifierInvalidateRangeStart(start: u64, end: u64): void {
  call_indirect<void>(invalidateRangeStartFn, start, end);
}

// @ts-ignore: decorator
@inline export function mmuNotifierInvalidateRangeEnd(start: u64, end: u64): void {
  call_indirect<void>(invalidateRangeEndFn, start, end);
}

// @ts-ignore: decorator
@inline export function fileGet(file: usize): void {
  call_indirect<void>(fileGetFn, file);
}

// @ts-ignore: decorator
@inline export function filePut(file: usize): void {
  call_indirect<void>(filePutFn, file);
}

// @ts-ignore: decorator
@inline export function fileUserFault(file: usize, index: u64): usize {
  return call_indirect<usize>(fileUserFaultFn, file, index);
}

/** mmu_notifier_register: the invalidate_range_start / _end callbacks. */
export function registerMmuNotifier(start: (start: u64, end: u64) => void, end: (start: u64, end: u64) => void): void {
  invalidateRangeStartFn = start.index;
  invalidateRangeEndFn = end.index;
}

/**
 * The file a VMA may map (the only kind is guest_memfd): take and drop a
 * reference (get_file / fput), and the page at an index for a user fault
 * (vm_ops->fault: the frame, or 0 with the reason recorded, SIGBUS -> EFAULT).
 */
export function registerFileOps(get: (file: usize) => void, put: (file: usize) => void,
  fault: (file: usize, index: u64) => usize): void {
  fileGetFn = get.index;
  filePutFn = put.index;
  fileUserFaultFn = fault.index;
}
