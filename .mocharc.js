// Every test by default (npm test); one tier with SCB_M2M_TEST_TIER=unit|integration|system
// (npm run test:unit, test:integration, test:system).
const tier = process.env.SCB_M2M_TEST_TIER;
module.exports = {
  spec: [tier ? `test/${tier}/**/*.test.js` : 'test/**/*.test.js'],
  reporter: 'test/reporter.js',
  timeout: 60000,
  exit: true,
  'forbid-only': true,
};
