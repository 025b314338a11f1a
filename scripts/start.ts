// `npm start`: the local demo (webhook + real backend + shim, no cluster). It is built by issue #8;
// until then this says so plainly instead of pretending.
console.log(
  [
    "kustodia: the local demo is not built yet (tracked as issue #8).",
    "What works today: `npm test` brings up the real test infrastructure (OpenBao, Custodia,",
    "an OCI registry, etcd + kube-apiserver, helm) and runs every test against it.",
    "To start that infrastructure by hand and leave it running: `npm run infra -- up`.",
  ].join("\n"),
);
