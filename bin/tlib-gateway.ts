import { runComponent } from '../common/process/run-component.js';
import { startGateway } from '../tlib-api/gateway/component.js';

await runComponent('tlib-gateway', 'gateway', startGateway);
