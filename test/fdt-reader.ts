// A small DTB reader for the tests: checks the header and block layout the
// format requires and returns the tree. Independent of src/vmm/fdt.ts.

export interface FdtNode { name: string; props: Map<string, Uint8Array>; children: FdtNode[] }
export interface FdtBlob {
  version: number; lastCompVersion: number; bootCpuidPhys: number;
  reservations: { address: bigint; size: bigint }[];
  root: FdtNode;
}

const dec = new TextDecoder();

export function readFdt(b: Uint8Array): FdtBlob {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h = Array.from({ length: 10 }, (_, i) => dv.getUint32(i * 4));
  const [magic, total, offStruct, offStrings, offRsv, version, lastComp, boot, sizeStrings, sizeStruct] = h;
  if (magic !== 0xd00dfeed) throw new Error(`bad magic ${magic.toString(16)}`);
  if (total !== b.length) throw new Error(`totalsize ${total} != ${b.length}`);
  if (offRsv % 8 !== 0 || offRsv < 40) throw new Error(`off_mem_rsvmap ${offRsv}`);
  if (offStruct % 4 !== 0 || sizeStruct % 4 !== 0) throw new Error("structure block not 4-aligned");
  if (offStruct + sizeStruct > total || offStrings + sizeStrings > total) throw new Error("block past totalsize");
  const reservations: FdtBlob["reservations"] = [];
  for (let p = offRsv; ; p += 16) {
    const address = dv.getBigUint64(p), size = dv.getBigUint64(p + 8);
    if (address === 0n && size === 0n) break;
    reservations.push({ address, size });
  }
  const str = (off: number) => {
    if (off >= sizeStrings) throw new Error(`name offset ${off} outside the strings block`);
    const s = b.subarray(offStrings + off, offStrings + sizeStrings);
    const end = s.indexOf(0);
    if (end < 0) throw new Error("unterminated name");
    return dec.decode(s.subarray(0, end));
  };
  let p = offStruct;
  const end = offStruct + sizeStruct;
  const word = () => { if (p + 4 > end) throw new Error("structure block overrun"); const v = dv.getUint32(p); p += 4; return v; };
  const stack: FdtNode[] = [];
  let root: FdtNode | null = null;
  for (;;) {
    const t = word();
    if (t === 1) {
      const s = b.subarray(p, end), z = s.indexOf(0);
      if (z < 0) throw new Error("unterminated node name");
      const node: FdtNode = { name: dec.decode(s.subarray(0, z)), props: new Map(), children: [] };
      p += (z + 1 + 3) & ~3;
      if (stack.length === 0) { if (root) throw new Error("two roots"); root = node; } else stack[stack.length - 1].children.push(node);
      stack.push(node);
    } else if (t === 3) {
      const len = word(), nameoff = word();
      if (stack.length === 0) throw new Error("property outside a node");
      stack[stack.length - 1].props.set(str(nameoff), b.slice(p, p + len));
      p += (len + 3) & ~3;
    } else if (t === 2) {
      if (!stack.pop()) throw new Error("END_NODE without a node");
    } else if (t === 4) {
      // NOP
    } else if (t === 9) {
      if (stack.length) throw new Error("END with open nodes");
      if (p !== end) throw new Error("bytes after END");
      break;
    } else throw new Error(`bad token ${t}`);
  }
  if (!root) throw new Error("no root");
  return { version, lastCompVersion: lastComp, bootCpuidPhys: boot, reservations, root };
}

/** The node at a path like "/cpus/cpu@0". */
export function fdtNode(root: FdtNode, path: string): FdtNode | undefined {
  let n: FdtNode | undefined = root;
  for (const part of path.split("/").filter(Boolean)) n = n?.children.find((c) => c.name === part);
  return n;
}

export const propString = (v: Uint8Array | undefined) => (v ? dec.decode(v.subarray(0, v.length - 1)) : undefined);
export const propCells = (v: Uint8Array | undefined) => {
  if (!v) return undefined;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return Array.from({ length: v.length / 4 }, (_, i) => dv.getUint32(i * 4));
};
