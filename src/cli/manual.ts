/**
 * The man-style manual shipped in the release tarball (`share/doc/twofold/twofold.txt`): the overview
 * and every command's help, rendered from the one help table in help.ts so the manual and `--help`
 * never disagree.
 * @module
 */
import { COMMANDS, renderHelp, renderOverview } from "./help.ts";
import { VERSION } from "../version.ts";

/** The whole manual as plain text: NAME, SYNOPSIS, then one section per command and subcommand. */
export function renderManual(version: string = VERSION): string {
  const out = [
    `TWOFOLD(8)                      twofold ${version}`,
    "",
    "NAME",
    "  twofold - double-VPN edge appliance: aes0 (WireGuard, AES-256-GCM) inside wg0 (WireGuard)",
    "",
    "SYNOPSIS",
    ...renderOverview().split("\n").map(indent),
    "",
    "COMMANDS",
  ];
  for (const c of COMMANDS) {
    out.push("", `  twofold ${c.name}`, ...renderHelp(c).split("\n").map((l) => indent(indent(l))));
  }
  return out.join("\n") + "\n";
}

function indent(line: string): string {
  return line === "" ? "" : `  ${line}`;
}
