// wg.io: saving and loading tensors (checkpoints in the safetensors format).

export {
  saveSafetensors,
  loadSafetensors,
  readSafetensorsHeader,
  type SafetensorsDType,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './safetensors';
export { saveCheckpoint, loadCheckpoint, readCheckpointProgress, readCheckpointTokenizer } from './checkpoint';
export { memoryCheckpointStore, indexedDBCheckpointStore, type CheckpointStore } from './checkpoint-store';
