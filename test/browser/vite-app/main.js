// A Vite app that uses webkvm as a package: `webkvm` is resolved through the
// repo's package.json (its `exports` map), and Vite emits the core's wasm as an
// asset because dist/core.js names it with new URL("../build/release.wasm", import.meta.url).
import { Kvm, Machine } from "webkvm";
// The hello guest as an asset: Vite copies it into the build and gives us its URL.
import helloUrl from "../../../guests/hello/hello.bin?url";

async function main() {
  const kvm = await Kvm.open();
  const machine = await Machine.create({ kvm, memSize: 16n << 20n });
  const res = await fetch(helloUrl);
  if (!res.ok) throw new Error(`could not load ${helloUrl}: ${res.status}`);
  machine.load(new Uint8Array(await res.arrayBuffer()));
  const r = machine.run();
  machine.close();
  document.getElementById("out").textContent = machine.output;
  document.body.dataset.stop = `${r.stop} ${r.reason}`;
  document.body.dataset.output = machine.output;
}

main().catch((e) => { document.body.dataset.error = String(e?.stack ?? e); });
