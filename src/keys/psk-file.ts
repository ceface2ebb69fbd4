/**
 * The `manual` key source's PSK file reader, re-exported for the key plane: it lives in
 * `config/psk-file.ts` because the config loader checks the same files before anything starts.
 * @module
 */
export { readPskFile } from "../config/psk-file.ts";
