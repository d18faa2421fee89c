// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "dibs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "dibs", targets: ["dibs"]),
        .executable(name: "dibs-load", targets: ["dibs-load"]),
        .library(name: "DibsCore", targets: ["DibsCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Tests only: the OpenAPI drift and response-schema checks.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0", traits: []),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Domain types, the LeaseStore protocol and the memory store: no I/O packages.
        .target(
            name: "DibsCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Migrator, PostgresLeaseStore and the sale ledger: the only place with SQL.
        .target(
            name: "DibsPostgres",
            dependencies: [
                "DibsCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // hiredis, the C library Dibs speaks RESP with (Debian's libhiredis-dev).
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // The Redis client (the only place that touches C) and RedisLeaseStore.
        .target(
            name: "DibsRedis",
            dependencies: [
                "DibsCore", "CHiredis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The claim API over HTTP: routes, API keys, idempotency, rate limits, problem+json, metrics.
        .target(
            name: "DibsHTTP",
            dependencies: [
                "DibsCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("openapi.yaml")],
            swiftSettings: strict
        ),
        // A lean keep-alive HTTP/1.1 client on SwiftNIO: the demo, the benchmarks and the load test.
        .target(
            name: "DibsClient",
            dependencies: [
                "DibsCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Wires configuration, stores and services together.
        .target(
            name: "DibsApp",
            dependencies: [
                "DibsCore", "DibsPostgres", "DibsRedis", "DibsHTTP", "DibsClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "dibs",
            dependencies: [
                "DibsApp", "DibsClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The history model and checker of the load test: pure, no I/O.
        .target(name: "DibsCheck", path: "LoadTests/DibsCheck", swiftSettings: strict),
        // The load generator: drives dibs serve over HTTP, records the history, checks it.
        .target(
            name: "DibsLoad",
            dependencies: [
                "DibsCheck", "DibsClient",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "LoadTests/DibsLoad",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "dibs-load",
            dependencies: [
                "DibsLoad", "DibsClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "LoadTests/dibs-load",
            swiftSettings: strict
        ),
        // The LeaseStore conformance suite, written once and run against every store.
        .target(
            name: "LeaseStoreConformance",
            dependencies: ["DibsCore", "DibsClient"],
            path: "Tests/LeaseStoreConformance",
            swiftSettings: strict
        ),
        .testTarget(
            name: "DibsCoreTests",
            dependencies: ["DibsCore", "LeaseStoreConformance"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DibsCheckTests",
            dependencies: ["DibsCheck"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DibsRedisTests",
            dependencies: ["DibsRedis", "DibsPostgres", "LeaseStoreConformance"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DibsHTTPTests",
            dependencies: [
                "DibsHTTP", "DibsApp", "DibsLoad", "DibsCheck", "LeaseStoreConformance",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DibsPostgresTests",
            dependencies: ["DibsPostgres", "LeaseStoreConformance"],
            swiftSettings: strict
        ),
    ]
)
