import { runComponent } from '../common/process/run-component.js';
import { startMediaController } from '../media-controller/component.js';

await runComponent('media-controller', 'media-controller', startMediaController);
