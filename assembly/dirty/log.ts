// KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG (kvm_get_dirty_log_protect, kvm_clear_dirty_log_protect), with
// every check in the kernel's order. The bitmap's summary (bitmap.ts) keeps a
// clean region from costing a scan.

import { Vm, activeSet } from "../kvm/kvm_host";
import { setOf, idLookup } from "../memslots/set";
import { slotOf, KVM_USER_MEM_SLOTS } from "../memslots/slot";
import { bitmapWords, scratchOf, summaryOf } from "./bitmap";
import { writeProtectBitmap } from "../mmu/mmu";
import { hvaToLinear, copyUser, hvaResident, hvaProt, userRangeWritable, privateFrame, privateRun, PROT_WRITE } from "../hostmm/mm";
import { hvaMissing } from "../hostmm/userfaultfd";
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from "../kvm/set_memslot";
import { ioctlBuf, PAGE_SIZE, PAGE_MASK } from "../layout";
import { dirtyAtomicOff, DIRTY_LEVER_GET, DIRTY_LEVER_CLEAR } from "../debug/dirty_levers";
import { fail, ENXIO, EINVAL, ENOENT, EFAULT, CHECK_DIRTY_NO_BITMAPS, CHECK_DIRTY_SLOT_ID, CHECK_DIRTY_NO_SLOT,
  CHECK_DIRTY_COPY, CHECK_CLEAR_FIRST_ALIGN, CHECK_CLEAR_FIRST_RANGE, CHECK_CLEAR_NUM_RANGE,
  CHECK_CLEAR_NUM_ALIGN } from "../errno";

/** The logged slot named by an ioctl's slot field, or -errno (checks 2-4 of GET / 2, 3, 5 of CLEAR). */
function loggedSlot(vm: Vm, slot: u32, betweenIdAndLookup: i32): i64 {
  if (vm.dirtyRingSize != 0) return fail(CHECK_DIRTY_NO_BITMAPS, ENXIO);
  const asId = slot >> 16, id = slot & 0xffff;
  if (asId >= vm.nrAs || id >= <u32>KVM_USER_MEM_SLOTS) return fail(CHECK_DIRTY_SLOT_ID, EINVAL);
  if (betweenIdAndLookup != 0) return betweenIdAndLookup;
  const p = idLookup(setOf(activeSet(vm, asId)), <i32>id);
  if (p == 0 || slotOf(p).dirtyBitmap == 0) return fail(CHECK_DIRTY_NO_SLOT, ENOENT);
  return <i64>p;
}

/**
 * Does any summary bit cover words [from, to)? (Whole summary words in between
 * are OR-ed, not tested one by one.) With no summary (sum 0), the words of
 * bm themselves are tested.
 */
function summaryAny(sum: usize, from: usize, to: usize, bm: usize = 0): bool {
  if (from >= to) return false;
  if (WEBKVM_THREADS && sum == 0) {
    let acc: u64 = 0;
    for (let w = from; w < to; w++) acc |= load<u64>(bm + (w << 3));
    return acc != 0;
  }
  const first = from >> 6, last = (to - 1) >> 6;
  const lo = ~(<u64>0) << <u64>(from & 63);
  const hi = ~(<u64>0) >> <u64>(63 - ((to - 1) & 63));
  if (first == last) return (load<u64>(sum + (first << 3)) & lo & hi) != 0;
  let acc = (load<u64>(sum + (first << 3)) & lo) | (load<u64>(sum + (last << 3)) & hi);
  for (let w = first + 1; w < last; w++) acc |= load<u64>(sum + (w << 3));
  return acc != 0;
}

/**
 * copy_to_user of `bytes` bytes of bitmap words at src to user address dst. A
 * destination page that still maps the zero page needs no write when the
 * words it would receive are all zero (per the summary): a clean slot's log
 * costs the summary, not a page of zeros per 32,768 pages. sum 0: src has no
 * summary (its words are tested instead).
 */
function copyBitmapToUser(dst: u64, src: usize, sum: usize, bytes: usize): bool {
  let done: usize = 0;
  if (userRangeWritable(dst, <u64>bytes)) {
    // Every page already a frame, in a row: one copy (a buffer reused across calls).
    const whole = privateRun(dst, <u64>bytes);
    if (whole != 0) { memory.copy(whole, src, bytes); return true; }
    // One writable anonymous mapping holds the whole buffer: per page, copy into
    // its frame, fault one in if the words are not all zero, or skip a zero page.
    // Frames that follow each other in linear memory are copied as one run.
    let runLin: usize = 0, runSrc: usize = 0, runLen: usize = 0;
    while (done < bytes) {
      const at = dst + <u64>done;
      const seg = min<usize>(bytes - done, <usize>(<u64>PAGE_SIZE - (at & PAGE_MASK)));
      let lin = privateFrame(at);
      if (lin == 0 && summaryAny(sum, done >> 3, (done + seg + 7) >> 3, src)) {
        lin = hvaToLinear(at, true);
        if (lin == 0) return false;
      }
      if (lin != 0 && runLen != 0 && lin == runLin + runLen) {
        runLen += seg;
      } else {
        if (runLen != 0) memory.copy(runLin, runSrc, runLen);
        runLin = lin; runSrc = src + done; runLen = lin != 0 ? seg : 0;
      }
      done += seg;
    }
    if (runLen != 0) memory.copy(runLin, runSrc, runLen);
    return true;
  }
  while (done < bytes) {
    const at = dst + <u64>done;
    const seg = min<usize>(bytes - done, <usize>(<u64>PAGE_SIZE - (at & PAGE_MASK)));
    const prot = hvaProt(at);
    if (prot < 0 || (<u32>prot & PROT_WRITE) == 0) return false;
    // A missing page (userfaultfd.ts) is never skipped: the copy faults on it, as copy_to_user would.
    if (!(hvaResident(at) == false && !summaryAny(sum, done >> 3, (done + seg + 7) >> 3, src) && !hvaMissing(at))) {
      const lin = hvaToLinear(at, true);
      if (lin == 0) return false;
      memory.copy(lin, src + done, seg);
    }
    done += seg;
  }
  return true;
}

/** KVM_GET_DIRTY_LOG (struct kvm_dirty_log in ioctlBuf()). */
export function getDirtyLog(vm: Vm): i32 {
  const r = loggedSlot(vm, load<u32>(ioctlBuf()), 0);
  if (r < 0) return <i32>r;
  const slot = <usize>r;
  const s = slotOf(slot);
  const user = load<u64>(ioctlBuf(), 8);
  const bm = s.dirtyBitmap;
  const n = bitmapWords(s.npages);
  const sum = summaryOf(bm, s.npages);
  if ((vm.manualDirtyLogProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0) {
    return copyBitmapToUser(user, bm, sum, n << 3) ? 0 : fail(CHECK_DIRTY_COPY, EFAULT);
  }
  if (WEBKVM_THREADS) return takeDirtyLog(slot, user);
  // The kernel takes and zeroes every dirty word into a buffer, re-arms those
  // pages, then copies the buffer out (an EFAULT then loses the bits). Nothing
  // can dirty a page while this ioctl runs, so the same outcome needs no
  // buffer: re-arm from the live words, copy them out, then zero them (also
  // after an EFAULT). That is one pass over the dirty words fewer.
  const sumWords = (n + 63) >> 6;
  if (summaryAny(sum, 0, n)) writeProtectBitmap(slot, bm, 0, <u64>n);
  const ok = copyBitmapToUser(user, bm, sum, n << 3);
  for (let sw: usize = 0; sw < sumWords; sw++) {
    const p = sum + (sw << 3);
    let bits = load<u64>(p);
    if (bits == 0) continue;
    while (bits != 0) {
      store<u64>(bm + (((sw << 6) + <usize>ctz(bits)) << 3), 0);
      bits &= bits - 1;
    }
    store<u64>(p, 0);
  }
  return ok ? 0 : fail(CHECK_DIRTY_COPY, EFAULT);
}

/**
 * GET_DIRTY_LOG without manual protect in the threads build, where vCPUs on
 * other threads set bits while it runs: as kvm_get_dirty_log_protect, each
 * dirty word is taken with an exchange into the scratch half, its pages are
 * re-armed, and the scratch half is copied out. A bit set after its word was
 * taken stays in the live bitmap for the next call; a write between the take
 * and the re-arm lands on a page this call reports. Summary bits are taken
 * with an exchange too: a word whose summary bit a marker has not set yet is
 * left for the next call (bitmap.ts's order).
 */
function takeDirtyLog(slot: usize, user: u64): i32 {
  const s = slotOf(slot);
  const bm = s.dirtyBitmap;
  const n = bitmapWords(s.npages);
  const sum = summaryOf(bm, s.npages);
  const scratch = scratchOf(bm, s.npages);
  const plain = dirtyAtomicOff(DIRTY_LEVER_GET);
  let any = false;
  for (let sw: usize = 0; sw < (n + 63) >> 6; sw++) {
    const sp = sum + (sw << 3);
    let bits: u64;
    if (plain) { bits = load<u64>(sp); store<u64>(sp, 0); } else bits = atomic.xchg<u64>(sp, 0);
    while (bits != 0) {
      const w = (sw << 6) + <usize>ctz(bits);
      bits &= bits - 1;
      const wp = bm + (w << 3);
      let mask: u64;
      if (plain) { mask = load<u64>(wp); store<u64>(wp, 0); } else mask = atomic.xchg<u64>(wp, 0);
      if (mask == 0) continue;
      store<u64>(scratch + (w << 3), mask);
      any = true;
    }
  }
  if (any) writeProtectBitmap(slot, scratch, 0, <u64>n);
  const ok = copyBitmapToUser(user, scratch, 0, n << 3);
  memory.fill(scratch, 0, n << 3);
  return ok ? 0 : fail(CHECK_DIRTY_COPY, EFAULT);
}

/** KVM_CLEAR_DIRTY_LOG (struct kvm_clear_dirty_log in ioctlBuf()). */
export function clearDirtyLog(vm: Vm): i32 {
  const numPages = <u64>load<u32>(ioctlBuf(), 4);
  const first = load<u64>(ioctlBuf(), 8);
  const user = load<u64>(ioctlBuf(), 16);
  const r = loggedSlot(vm, load<u32>(ioctlBuf()), (first & 63) != 0 ? fail(CHECK_CLEAR_FIRST_ALIGN, EINVAL) : 0);
  if (r < 0) return <i32>r;
  const slot = <usize>r;
  const s = slotOf(slot);
  if (first > s.npages) return fail(CHECK_CLEAR_FIRST_RANGE, EINVAL);
  if (numPages > s.npages - first) return fail(CHECK_CLEAR_NUM_RANGE, EINVAL);
  if (numPages < s.npages - first && (numPages & 63) != 0) return fail(CHECK_CLEAR_NUM_ALIGN, EINVAL);
  const words = <usize>((numPages + 63) >> 6);
  const bm = s.dirtyBitmap;
  const scratch = scratchOf(bm, s.npages);
  // As the kernel: the user's mask goes into the scratch half first, so an
  // EFAULT changes nothing the caller can see.
  if (!copyUser(scratch, user, words << 3, false)) {
    memory.fill(scratch, 0, words << 3);
    return fail(CHECK_DIRTY_COPY, EFAULT);
  }
  const live = bm + <usize>((first >> 6) << 3);
  let any = false;
  for (let k: usize = 0; k < words; k++) {
    const mask = load<u64>(scratch + (k << 3));
    if (mask == 0) continue;
    const at = live + (k << 3);
    let cleared: u64;
    if (WEBKVM_THREADS && !dirtyAtomicOff(DIRTY_LEVER_CLEAR)) {
      // atomic_long_fetch_andnot: a bit a vCPU sets meanwhile is either cleared
      // (and re-armed) here or stays set for the next GET.
      cleared = atomic.and<u64>(at, ~mask) & mask;
    } else {
      cleared = load<u64>(at) & mask;
      store<u64>(at, load<u64>(at) & ~mask);
    }
    store<u64>(scratch + (k << 3), cleared); // what gets re-armed: only pages that were dirty
    if (cleared != 0) any = true;
  }
  if (any) writeProtectBitmap(slot, scratch, 0, <u64>words, first);
  memory.fill(scratch, 0, words << 3);
  return 0;
}
