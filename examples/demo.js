// npm start: boots the bundled Linux (guests/linux, release core, every guest
// access through the memslots and the shadow page tables), shows its console,
// and prints what the memory subsystem did during the boot; then a short tour
// of the memslot subsystem: slots created / moved / deleted, guest memory, and
// the memory map with its generation after every step.
import { Kvm, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KvmError } from "../dist/index.js";
import { bootLinux } from "./linux-boot.js";

{
  // A short workload in the guest (guests/linux/README.md: webkvm.run=, its tools); /init and the
  // userland are glibc programs for rv64gc (on a vCPU without F and D /init dies of SIGILL: a kernel panic).
  const cmdline = "earlycon=sbi console=hvc0 webkvm.run=uname,-a;free;memtouch,8;dirty,512,4;mips,1000000;poweroff";
  console.log(`booting guests/linux (Linux 6.1, rv64gc, 64 MiB, "${cmdline}") on the release core:`);
  // The console a line at a time (SBI putchar brings one character per call), each line marked as the guest's.
  let line = "";
  const boot = await bootLinux({ cmdline, onConsole: (text) => {
    line += text.replace(/\r/g, "");
    const end = line.lastIndexOf("\n") + 1;
    if (end > 0) {
      process.stdout.write(line.slice(0, end).replace(/^(?=.)/gm, "guest> "));
      line = line.slice(end);
    }
  } });
  if (line) process.stdout.write(`guest> ${line}\n`);
  const c = boot.counts;
  const n = (v) => v.toLocaleString("en-US");
  console.log(`\nthe boot: init's first line after ${(boot.firstLineMs / 1000).toFixed(2)} s, power-off after ` +
    `${(boot.powerOffMs / 1000).toFixed(2)} s (wall, from opening the core)`);
  console.log(`   guest instructions        ${n(c.instructions)}`);
  console.log(`   exits to the VMM          ${n(c.exits)}  (SBI calls, MMIO)`);
  const ram = c.pageFaults - c.mmioSpteInstalls - c.mmioSpteHits - c.faultRetries;
  console.log(`   page faults (shadow MMU)  ${n(c.pageFaults)}  (${n(c.mmioSpteInstalls)} installed an MMIO spte, ` +
    `${n(c.mmioSpteHits)} hit one, ${n(c.faultRetries)} retried; ${n(ram)} for RAM)`);
  console.log(`   TLB flushes               ${n(c.flushes)}  (sfence.vma, satp writes: a full one drops the vCPU's sptes, one with an address those through its page; ` +
    `${n(c.remoteFlushes)} remote)`);
  console.log(`   sptes zapped              ${n(c.sptesZapped)}  (memslot and MMU-notifier zaps: ${n(c.zapAll)} zap-alls, ` +
    `${n(c.slotZaps)} slot zaps)`);
  console.log(`   sptes present at the end  ${n(c.sptesLive)}  (on the RAM slot's rmap)`);
  const hitRate = c.memslotLookups === 0 ? "-" : `${(100 * c.memslotCacheHits / c.memslotLookups).toFixed(3)} %`;
  console.log(`   memslot lookups           ${n(c.memslotLookups)}  (gfn -> slot for faults and page walks; ` +
    `${n(c.memslotCacheHits)} answered by the last-used slot: ${hitRate})`);
  console.log(`   dirty pages               ${n(c.dirtyPages)} of ${n(c.ramPages)}  (one KVM_GET_DIRTY_LOG of the RAM slot)`);
  console.log(`   host frames in use        ${n(c.hostFramesInUse)}  (demand paging: RAM the guest touched)`);
}

const hex = (v) => "0x" + BigInt(v).toString(16);
const flagNames = (f) => [f & KVM_MEM_LOG_DIRTY_PAGES && "LOG_DIRTY", f & KVM_MEM_READONLY && "READONLY"].filter(Boolean).join("|") || "-";

function printMap(vm, title) {
  console.log(`\n== ${title}  (generation ${vm.generation()})`);
  const slots = vm.memslots();
  if (slots.length === 0) console.log("   (no slots)");
  for (const s of slots) {
    const end = s.guestPhysAddr + s.memorySize;
    console.log(`   slot ${String(s.id).padStart(5)}  gpa ${hex(s.guestPhysAddr).padStart(12)}-${hex(end).padEnd(12)} ` +
      `${String(s.npages).padStart(6)} pages  hva ${hex(s.userspaceAddr)}  ${flagNames(s.flags)}`);
  }
}

const kvm = await Kvm.open();
console.log(`webkvm: KVM API ${kvm.apiVersion()}, ${kvm.checkExtension("nr_memslots")} user memslots per address space`);
const vm = kvm.createVm();
const ram = kvm.memory.mmap(16n << 30n); // 16 GiB reserved: costs nothing until touched
console.log(`host: 16 GiB mapped at ${hex(ram)}, ${kvm.memory.framesInUse} frames in use`);

vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0xa0000, userspaceAddr: ram });
vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x100000, memorySize: 0xbff00000, userspaceAddr: ram + 0x100000n,
  flags: KVM_MEM_LOG_DIRTY_PAGES });
vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0xfffc0000, memorySize: 0x40000, userspaceAddr: ram + 0xc0000000n,
  flags: KVM_MEM_READONLY });
vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x100000000n, memorySize: 0x300000000n, userspaceAddr: ram + 0x100000000n });
printMap(vm, "a PC-like layout: low RAM, RAM below 3 GiB (dirty-logged), a ROM, RAM above 4 GiB");

const msg = new TextEncoder().encode("hello from the host, through gfn -> hva");
vm.writeGuest(0x100000ffcn, msg);
console.log(`\nwrote ${msg.length} bytes at gpa 0x100000ffc (across a page boundary): ` +
  `"${new TextDecoder().decode(vm.readGuest(0x100000ffcn, msg.length))}"`);
console.log(`frames in use: ${kvm.memory.framesInUse} (demand paging: only touched pages)`);

vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x200000000n, memorySize: 0x300000000n, userspaceAddr: ram + 0x100000000n });
printMap(vm, "slot 3 moved to 8 GiB (MOVE: two swaps, INVALID copy first)");
console.log(`   the bytes moved with it: "${new TextDecoder().decode(vm.readGuest(0x200000ffcn, 5))}"`);

try {
  vm.setUserMemoryRegion({ slot: 4, guestPhysAddr: 0x200001000n, memorySize: 0x1000, userspaceAddr: ram });
} catch (e) {
  if (!(e instanceof KvmError)) throw e;
  console.log(`\noverlapping create refused: ${e.message}`);
}
try {
  vm.writeGuest(0xfffc0000, new Uint8Array([1]));
} catch (e) {
  console.log(`write to the ROM refused: ${e.message}`);
}

vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x100000, memorySize: 0xbff00000, userspaceAddr: ram + 0x100000n });
printMap(vm, "dirty logging turned off on slot 1 (FLAGS_ONLY: one swap)");
vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 });
printMap(vm, "ROM slot deleted (DELETE: two swaps)");
vm.x86SetMemoryRegion(32765, 0xfee00000, 0x1000);
printMap(vm, "the x86 APIC access page: internal slot 32765, invisible to the guest");
console.log(`   visible? ${vm.isVisibleGfn(0xfee00)}   (slot 0 gfn 0: ${vm.isVisibleGfn(0)})`);
vm.close();
