// The e2e group: every e2e test file in one process, so they share one example build, one server
// and one browser (test/lib/e2e.js). `npm run test:e2e` runs this.
import './inbox.e2e.test.js';
import './portal.e2e.test.js';
import './readme.e2e.test.js';
