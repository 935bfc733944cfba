import { runComponent } from '../common/process/run-component.js';
import { startSignaling } from '../signaling/component.js';

await runComponent('signaling', 'signaling', startSignaling);
