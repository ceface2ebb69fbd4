/** Test-side entry point to the namespace lab in src/lab (shared with `twofold demo` and the bench). */
export * from "../../src/lab/measure.ts";
