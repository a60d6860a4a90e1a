// One thread's share of test/threads-slots-lock.test.ts: creates, moves and
// deletes its own memslots (ids first .. first+count-1) of one VM through the
// raw core exports (the ioctl buffer of the instance it runs on), and returns
// the model of what it left, the count of each successful update and the
// failures. Shared by the Workers and the main thread.

const KVM_SET_USER_MEMORY_REGION = 0x4020ae46;
const REGION_V1_BYTES = 32;
export const SLOT_PAGES = 16;
const SLOT_BYTES = SLOT_PAGES * 4096;

/** Slot id s lives in its own 2 MiB window of guest-physical space, at offset 0 or 1 MiB in it. */
export function slotGpa(id, moved) { return (BigInt(id + 1) << 21n) + (moved ? 0x100000n : 0n); }

export function churn(core, vmFd, hva, first, count, ops, seed) {
  let x = seed >>> 0 || 1;
  const rand = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const where = new Map(); // id -> moved (false: offset 0, true: 1 MiB)
  const done = { creates: 0, moves: 0, deletes: 0 };
  const failures = [];
  const region = (id, gpa, size) => {
    const dv = new DataView(core.memory.buffer, core.ioctlBuffer(), REGION_V1_BYTES);
    dv.setUint32(0, id, true);
    dv.setUint32(4, 0, true);
    dv.setBigUint64(8, gpa, true);
    dv.setBigUint64(16, size, true);
    dv.setBigUint64(24, hva + BigInt(id * SLOT_BYTES), true);
    return core.ioctl(vmFd, KVM_SET_USER_MEMORY_REGION, REGION_V1_BYTES, 0n);
  };
  for (let i = 0; i < ops; i++) {
    const id = first + rand() % count;
    const moved = where.get(id);
    let r, kind;
    if (moved === undefined) { kind = "creates"; r = region(id, slotGpa(id, false), BigInt(SLOT_BYTES)); if (r === 0) where.set(id, false); }
    else if (rand() & 1) { kind = "moves"; r = region(id, slotGpa(id, !moved), BigInt(SLOT_BYTES)); if (r === 0) where.set(id, !moved); }
    else { kind = "deletes"; r = region(id, slotGpa(id, moved), 0n); if (r === 0) where.delete(id); }
    if (r === 0) done[kind]++;
    else if (failures.length < 8) failures.push(`${kind} ${id}: ${r} (check ${core.lastFailedCheck()})`);
  }
  return { model: [...where].map(([id, moved]) => [id, slotGpa(id, moved)]), done, failures };
}
