import { runWhenMain } from '../support';
import { runNestjsSample } from './app';

export { runNestjsSample };

// `node dist/samples/nestjs/run.js` runs it on its own, like every sample.
runWhenMain(module, runNestjsSample);
