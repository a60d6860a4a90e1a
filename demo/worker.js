// The demo's vCPU thread: a Worker owning the Kvm instance. It boots the hello
// guest, then the memory-writer guest, runs the vCPU in time slices, and posts
// the memory map, the dirty bitmap of the logged data slot and the UART output
// to the page; the page sends slot operations back (postMessage both ways).
import { Kvm, Machine, KvmError, KVM_MEM_LOG_DIRTY_PAGES, riscv } from "../dist/index.js";
import { memoryMap, hex } from "./memory-map.js";
import { writerImage, writerRegs } from "./writer-guest.js";

const DATA_SLOT = 1;
const DATA_PAGES = 512;                    // 2 MiB
const DATA_SIZE = BigInt(DATA_PAGES) << 12n;
const DATA_GPAS = [0x40000000n, 0x60000000n];
const MAILBOX = riscv.RAM_BASE + 0x10000n;  // u64: where the writer guest finds the data slot
const SMRAM_SLOT = 0;                      // a slot in address space 1 (SMM), shown on the map
const SLICE_MS = 12;
const POST_MS = 100;
const RUN_CHUNK = 50_000n;                 // instructions per Machine.run: a few ms of guest time at most

let kvm, machine, dataHva, dataGpa = DATA_GPAS[0], dataPresent = false, logging = true;
let running = false, lastPost = 0, instrAtPost = 0n, timeAtPost = 0, harvests = 0, mips = 0;
let consoleBuf = "";
let ticksPerMs = 0, wallAtZero = 0;        // guest time = (performance.now() - wallAtZero) * ticksPerMs

const post = (msg) => self.postMessage(msg);
let atLineStart = true;
const say = (text) => { if (text) { consoleBuf += text; atLineStart = text.endsWith("\n"); } };
/** A host line: on a line of its own even when the guest is mid-line. */
const note = (text) => say(`${atLineStart ? "" : "\n"}[host: ${text}]\n`);

function flush() {
  if (consoleBuf) { post({ type: "console", text: consoleBuf }); consoleBuf = ""; }
}

function setData(flags, gpa = dataGpa, size = DATA_SIZE) {
  machine.vm.setUserMemoryRegion({ slot: DATA_SLOT, guestPhysAddr: gpa, memorySize: size, userspaceAddr: dataHva, flags });
}

function tellGuest() {
  machine.vm.writeGuest(MAILBOX, new Uint8Array(new BigUint64Array([dataGpa]).buffer));
}

function state(extra = {}) {
  let heat = null;
  if (dataPresent && logging) {
    const bitmap = machine.vm.getDirtyLog(DATA_SLOT);  // KVM_GET_DIRTY_LOG: fetch and clear
    harvests++;
    heat = { bitmap, npages: DATA_PAGES, base: hex(dataGpa), harvests };
  }
  const now = performance.now();
  const instr = machine.vcpu.instret;
  if (now - timeAtPost >= 50) {
    if (timeAtPost) mips = Number(instr - instrAtPost) / ((now - timeAtPost) * 1000);
    instrAtPost = instr; timeAtPost = now;
  }
  flush();
  post({ type: "state", map: memoryMap(machine.vm), heat, dataSlot: { id: DATA_SLOT, present: dataPresent, logging, gpa: hex(dataGpa) },
    instructions: instr.toString(), mips, running, ...extra }, heat ? [heat.bitmap.buffer] : []);
}

async function boot() {
  kvm = await Kvm.open({ config: { addressSpaces: 2 } });
  // 1. the hello guest, to completion
  say("[booting guests/hello/hello.bin]\n");
  const hello = await Machine.create({ kvm, memSize: 16n << 20n, onConsole: say });
  hello.load(new Uint8Array(await (await fetch(new URL("../guests/hello/hello.bin", import.meta.url))).arrayBuffer()));
  const r = hello.run();
  say(`[hello: ${r.stop} (reason ${r.reason}), ${r.instructions} instructions, ${r.exits} exits]\n`);
  hello.close();
  // 2. the writer guest, forever, with a dirty-logged data slot it keeps writing
  say("[booting the memory-writer guest: it writes its data slot and prints A..Z]\n");
  machine = await Machine.create({ kvm, memSize: 1n << 20n, onConsole: say });
  dataHva = kvm.memory.mmap(DATA_SIZE);
  setData(KVM_MEM_LOG_DIRTY_PAGES);
  dataPresent = true;
  const smram = kvm.memory.mmap(0x10000);
  // as_id 1 in the upper 16 bits of the slot field: an SMRAM-like slot in the second address space
  if (machine.vm.addressSpaces > 1)
    machine.vm.setUserMemoryRegion({ slot: (1 << 16) | SMRAM_SLOT, guestPhysAddr: 0x30000, memorySize: 0x10000, userspaceAddr: smram });
  machine.load(writerImage());
  tellGuest();
  const regs = writerRegs({ mailboxGpa: MAILBOX, pages: DATA_PAGES, uartBase: riscv.UART_BASE });
  for (const [reg, v] of Object.entries(regs)) machine.vcpu.setReg(Number(reg), v);
  machine.vcpu.setBudget(Number(RUN_CHUNK));
  ticksPerMs = Number(machine.vcpu.getOneReg(riscv.REG_TIMER_FREQUENCY)) / 1000;
  wallAtZero = performance.now() - Number(machine.vcpu.time) / ticksPerMs;
  running = true;
  state({ booted: true });
  setTimeout(slice, 0);
}

/** Where guest time should be now: the guest's `time` is kept with the wall clock, as hardware's is. */
const wallTicks = () => BigInt(Math.floor((performance.now() - wallAtZero) * ticksPerMs));

function slice() {
  if (!running) return;
  const end = performance.now() + SLICE_MS;
  const vcpu = machine.vcpu;
  try {
    // Guest time only runs ahead of instructions when the host is slower than the timebase
    // assumes: then it jumps to the wall clock (a descheduled vCPU's clock keeps going too).
    const now = wallTicks();
    if (vcpu.time < now) vcpu.setOneReg(riscv.REG_TIMER_TIME, now);
    // ... and on a faster host the vCPU waits for the wall clock instead of running ahead.
    while (performance.now() < end && vcpu.time < wallTicks()) {
      const r = machine.run({ maxInstructions: RUN_CHUNK });
      if (r.stop !== "limit") { running = false; note(`the writer guest stopped: ${r.stop}`); break; }
    }
  } catch (e) {
    running = false;
    note(`vCPU error: ${e.message}`);
  }
  if (performance.now() - lastPost >= POST_MS || !running) { lastPost = performance.now(); state(); }
  setTimeout(slice, 0);   // yield: the page's messages are handled between slices
}

function op(name) {
  switch (name) {
    case "move": {
      if (!dataPresent) throw new Error("slot 1 is deleted: re-create it first");
      const to = dataGpa === DATA_GPAS[0] ? DATA_GPAS[1] : DATA_GPAS[0];
      setData(logging ? KVM_MEM_LOG_DIRTY_PAGES : 0, to);      // KVM_MR_MOVE
      dataGpa = to;
      tellGuest();
      return `slot ${DATA_SLOT} moved to ${hex(to)}`;
    }
    case "delete":
      if (!dataPresent) throw new Error("slot 1 is already deleted");
      setData(0, 0n, 0n);                                       // KVM_MR_DELETE
      dataPresent = false;
      return `slot ${DATA_SLOT} deleted (the guest's stores now exit as MMIO and are dropped)`;
    case "create":
      if (dataPresent) throw new Error("slot 1 exists");
      setData(logging ? KVM_MEM_LOG_DIRTY_PAGES : 0);           // KVM_MR_CREATE
      dataPresent = true;
      return `slot ${DATA_SLOT} re-created at ${hex(dataGpa)}`;
    case "toggle-log":
      logging = !logging;
      if (dataPresent) setData(logging ? KVM_MEM_LOG_DIRTY_PAGES : 0);  // KVM_MR_FLAGS_ONLY
      return `dirty logging ${logging ? "on" : "off"} for slot ${DATA_SLOT}`;
    default:
      throw new Error(`unknown operation ${name}`);
  }
}

self.onmessage = (ev) => {
  const { type, id } = ev.data;
  if (type !== "op") return;
  try {
    const text = op(ev.data.name);
    note(`${text}; generation ${machine.vm.generation()}`);
    state({ reply: { id, ok: true, text } });
  } catch (e) {
    const text = e instanceof KvmError ? `${e.code}: ${e.message}` : e.message;
    note(text);
    state({ reply: { id, ok: false, text } });
  }
};

boot().catch((e) => { flush(); post({ type: "fatal", text: String(e && e.stack || e) }); });
