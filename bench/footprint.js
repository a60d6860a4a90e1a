// Memory footprint: what the core's metadata costs per memslot and per
// touched guest page, measured from the core's own allocator (the bytes of
// its live heap blocks, headers included: statHeapBlockBytes) and frame
// count, beside the kernel's costs for the same things (x86-64, from
// include/linux/kvm_host.h and arch/x86/include/asm/kvm_host.h: the
// constants below), and the sizes of the wasm modules.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Kvm, Machine } from "../dist/index.js";

const KVM_MEM_LOG_DIRTY_PAGES = 1;
const SLOT_PAGES = 16n;
const MEMTEST_IMAGE = new URL("../guests/memtest/memtest.bin", import.meta.url);
const BUILD = fileURLToPath(new URL("../build/", import.meta.url));

/**
 * The kernel's costs (x86-64, Linux 6.x), from its headers:
 * - struct kvm_memory_slot (include/linux/kvm_host.h): id_node[2] (hlist_node,
 *   2 x 16), hva_node[2] (interval_tree_node: rb_node 24 + start, last,
 *   __subtree_last = 48; x 2), gfn_node[2] (rb_node, 2 x 24), base_gfn, npages,
 *   dirty_bitmap, userspace_addr (4 x 8), flags + id + as_id (8), arch
 *   (struct kvm_arch_memory_slot: rmap[3], lpage_info[2], gfn_write_track:
 *   6 pointers, 48) and gmem (file, pgoff: 16, CONFIG_KVM_PRIVATE_MEM) = 280
 *   bytes, one object for both memslot sets (its nodes come in pairs); a
 *   kzalloc of 280 bytes takes a kmalloc-512 object.
 * - struct kvm_memslots: generation, last_used_slot, hva_tree (rb_root_cached
 *   16), gfn_tree (8), id_hash (DECLARE_HASHTABLE(id_hash, 7): 128 x 8),
 *   node_idx = 1,072 bytes, two per address space inside struct kvm.
 * - per page of a slot: rmap[0] (struct kvm_rmap_head, 8 bytes per 4 KiB
 *   page; rmap[1..2] and lpage_info (int) per 2 MiB / 1 GiB add 0.02), when
 *   the shadow MMU keeps rmaps; with dirty logging, the dirty bitmap and its
 *   second half (kvm_second_dirty_bitmap): 2 bits.
 * - per touched page: its spte (u64) in a shadow page table of 512 entries;
 *   the host frame's struct page (64 bytes) in the memmap.
 */
export const KERNEL = {
  memslotBytes: 280, memslotSlabBytes: 512, memslotsSetBytes: 1072,
  rmapBytesPerPage: 8, dirtyBitsPerPage: 2, spteBytesPerPage: 8, structPageBytes: 64,
};

/** Heap bytes a fresh VM's memslot sets take, and per slot with n slots of 16 pages (flags: the slots' flags). */
async function perSlot(n, flags) {
  const kvm = await Kvm.open({ core: "release" });
  const heap = () => Number(kvm.core.statHeapBlockBytes());
  const hva = kvm.memory.mmap(BigInt(n) * SLOT_PAGES * 4096n);
  const h0 = heap();
  const vm = kvm.createVm();
  const h1 = heap();
  for (let i = 0; i < n; i++) {
    vm.setUserMemoryRegion({ slot: i, guestPhysAddr: BigInt(i) * 2n * SLOT_PAGES * 4096n, memorySize: SLOT_PAGES * 4096n,
      userspaceAddr: hva + BigInt(i) * SLOT_PAGES * 4096n, flags });
  }
  const h2 = heap();
  vm.createVcpu(0);
  const h3 = heap();
  return { vmBytes: h1 - h0, perSlot: (h2 - h1) / n, vcpuBytes: h3 - h2 };
}

/** The memtest guest over `pages` pages (dirty logging on): heap bytes and frames its run added. */
async function memtestGrowth(pages) {
  const kvm = await Kvm.open({ core: "release" });
  const m = await Machine.create({ kvm, memSize: 16n << 20n, dirtyLog: true });
  m.load(new Uint8Array(readFileSync(MEMTEST_IMAGE)), BigInt(pages) * 4096n);
  const heap = () => Number(kvm.core.statHeapBlockBytes()), frames = () => kvm.core.statFramesInUse();
  const h0 = heap(), f0 = frames();
  const r = m.run();
  if (r.stop !== "shutdown" || r.reason !== 0 || !m.output.includes("memtest ok")) throw new Error(`memtest: ${r.stop} ${m.output}`);
  return { heap: heap() - h0, frames: frames() - f0 };
}

/**
 * Per touched guest page: two memtest runs over different page counts, the
 * difference divided by the difference in pages (what one more page costs);
 * the rest of the smaller run is what a first run costs whatever it touches
 * (the vCPU's shadow page tables, allocated then).
 */
async function perTouchedPage(small, large) {
  const a = await memtestGrowth(small), b = await memtestGrowth(large);
  const heapPerPage = (b.heap - a.heap) / (large - small);
  return { pages: [small, large], heapPerPage, framesPerPage: (b.frames - a.frames) / (large - small),
    firstRunBytes: a.heap - heapPerPage * small };
}

/** Dirty-log bits per page: one slot of 2^18 pages (1 GiB, never touched) with and without LOG_DIRTY_PAGES. */
async function dirtyBitsPerPage() {
  const pages = 1n << 18n;
  const heapWith = async (flags) => {
    const kvm = await Kvm.open({ core: "release" });
    const hva = kvm.memory.mmap(pages * 4096n);
    const vm = kvm.createVm();
    const h0 = Number(kvm.core.statHeapBlockBytes());
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: pages * 4096n, userspaceAddr: hva, flags });
    return Number(kvm.core.statHeapBlockBytes()) - h0;
  };
  return ((await heapWith(KVM_MEM_LOG_DIRTY_PAGES)) - (await heapWith(0))) * 8 / Number(pages);
}

export async function footprintSuite(quick) {
  const counts = quick ? [256, 1024] : [1000, 32764];
  const rows = [];
  for (const n of counts) {
    const r = await perSlot(n, 0);
    rows.push({ slots: n, vmBytes: r.vmBytes, perSlotBytes: r.perSlot, vcpuBytes: r.vcpuBytes });
  }
  const dirtyBits = await dirtyBitsPerPage();
  const touched = await perTouchedPage(256, quick ? 1024 : 3072);
  const wasm = readdirSync(BUILD).filter((f) => f.endsWith(".wasm")).sort()
    .map((f) => ({ file: `build/${f}`, bytes: statSync(`${BUILD}${f}`).size }));
  const last = rows[rows.length - 1];
  console.log(`\nmemory footprint (core heap blocks, headers included; kernel: x86-64 from its headers)`);
  for (const r of rows) {
    console.log(`  ${r.slots} slots: ${r.perSlotBytes.toFixed(1)} bytes per memslot (both sets, indexes, hints, slot, arch; kernel: ` +
      `struct kvm_memory_slot ${KERNEL.memslotBytes} B in a ${KERNEL.memslotSlabBytes} B slab object); a new VM ${r.vmBytes} B ` +
      `(kernel: its two struct kvm_memslots, 2 x ${KERNEL.memslotsSetBytes} B, inside struct kvm); a new vCPU ${r.vcpuBytes} B`);
  }
  console.log(`  dirty logging: ${dirtyBits.toFixed(3)} bits per slot page (kernel ${KERNEL.dirtyBitsPerPage}: the bitmap and its second half)`);
  console.log(`  memtest, ${touched.pages.join(" vs ")} pages: ${touched.heapPerPage.toFixed(2)} heap bytes and ${touched.framesPerPage.toFixed(3)} ` +
    `4 KiB frames per touched page (kernel: spte ${KERNEL.spteBytesPerPage} B, rmap ${KERNEL.rmapBytesPerPage} B per slot page, ` +
    `struct page ${KERNEL.structPageBytes} B per frame); a first run ${(touched.firstRunBytes / 1024).toFixed(0)} KiB whatever it touches (the vCPU's shadow page tables)`);
  console.log(`  wasm modules: ${wasm.map((w) => `${w.file} ${(w.bytes / 1024).toFixed(0)} KiB`).join(", ")}`);
  return { name: "footprint", kernel: KERNEL, rows, perSlotBytes: last.perSlotBytes, dirtyBitsPerPage: dirtyBits, touched, wasm };
}
