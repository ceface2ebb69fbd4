/**
 * A DNS server in its own process for the burst test, so its memory can be read apart from the
 * client's: serves the map in argv[0] as node argv[1] on 127.0.0.1 (any port), prints `port N`, stops
 * on SIGTERM.
 * @module
 */
import { startDnsServer } from "../../src/dns/server.ts";
import { zoneFromMap } from "../../src/dns/zone.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";

const [mapFile, selfName] = Deno.args;
const zone = zoneFromMap(parseNetmap(await Deno.readTextFile(mapFile)), selfName);
const server = await startDnsServer({ hostname: "127.0.0.1", port: 0, zone });
console.log(`port ${server.port}`);
await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
const stats = server.stats();
await server.close();
console.log(`stats ${JSON.stringify(stats)}`);
Deno.exit(0);
