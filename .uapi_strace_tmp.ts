import { UapiServer } from "/work/main/src/uapi/server.ts";
const s = await UapiServer.listen("tfuapi0", { snapshot: () => ({ privateKey: null, listenPort: 5, fwmark: 0, peers: [] }), apply: () => 0 });
const p = new Deno.Command("strace", { args: ["-f", "-e", "trace=socket,connect", "/usr/bin/wg", ...Deno.args], stdout: "piped", stderr: "piped" }).outputSync();
console.log(new TextDecoder().decode(p.stdout)); console.log(new TextDecoder().decode(p.stderr));
await s.close();
