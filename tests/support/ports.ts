/** The one `freePort`, shared with the benchmarks (bench/ports.ts: the production image compiles bench/ without tests/). */
export { freePort } from '../../bench/ports.js';
