// SPDX-License-Identifier: MIT
import Testing
@testable import VPNCommands

@Suite("MetricsFormatter")
struct MetricsFormatterTests {
    @Test("two daemons' expositions merge by family: each HELP and TYPE once, every sample kept, in order")
    func mergeByFamily() {
        let one = "# HELP a_total A.\n# TYPE a_total counter\na_total{interface=\"x\"} 1\n# HELP b B.\n# TYPE b gauge\nb{interface=\"x\"} 2\n"
        let two = "# HELP a_total A.\n# TYPE a_total counter\na_total{interface=\"y\"} 3\n# HELP b B.\n# TYPE b gauge\nb{interface=\"y\"} 4\n"
        #expect(MetricsFormatter.merge([one, two]) == """
            # HELP a_total A.
            # TYPE a_total counter
            a_total{interface="x"} 1
            a_total{interface="y"} 3
            # HELP b B.
            # TYPE b gauge
            b{interface="x"} 2
            b{interface="y"} 4

            """)
        #expect(MetricsFormatter.merge([one]) == one)
    }

    @Test("label values escape backslash, quote and newline")
    func escaping() {
        #expect(MetricsFormatter.escape("a\\b\"c\nd+/=") == "a\\\\b\\\"c\\nd+/=")
    }
}
