"""The lab: the demo shop, the synthetic order history and the purchase-cycle back-test.

Used by the demo, the benchmarks and the tests; production code never imports it
(an import-linter contract says so). See README.md in this folder.
"""
