// The demo page: no framework, no bundler. ?guest= picks the mode: "linux" (the
// default) boots the bundled Linux in a Worker with an xterm.js terminal on its
// console (linux-app.js); "slots" runs the memory-slot guests, on two vCPU
// Workers when the page is cross-origin isolated (slots-app.js).
const guest = new URLSearchParams(location.search).get("guest") === "slots" ? "slots" : "linux";
document.body.dataset.guest = guest;
for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.guest === guest);
await import(guest === "linux" ? "./linux-app.js" : "./slots-app.js");
