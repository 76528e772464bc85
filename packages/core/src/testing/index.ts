/** Test kit: a fake clock (more to come from the conformance suite). */
export { type FakeClock, fakeClock } from './fake-clock.js'
