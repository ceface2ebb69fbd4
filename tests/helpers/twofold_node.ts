/** Test-side entry point to the twofold node lab helpers in src/lab. */
export * from "../../src/lab/twofold-node.ts";
