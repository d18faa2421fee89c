import ArgumentParser
import NIOCore
import NIOPosix

// Run Swift concurrency's jobs on NIO's event loops: a claim then never hops between the
// socket's thread and a concurrency thread, which on two cores cost a fifth of the rate.
// It must happen before the first task, so `main` is this file rather than `@main`.
if !NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() {
    print("dibs: warning: could not run Swift concurrency on the NIO event loops; expect lower throughput")
}

/// What `@main` on an `AsyncParsableCommand` does: parse, then run the async command.
func runDibs() async {
    do {
        var command = try Dibs.parseAsRoot()
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        Dibs.exit(withError: error)
    }
}

await runDibs()
