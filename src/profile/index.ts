// The profiler (wg.profile) and its report.
export { profile, type Profile, type ProfileOptions, type DispatchProfile, type SubmissionProfile } from './profiler';
export { formatProfile, type KernelProfile, type OpProfile } from './summary';
