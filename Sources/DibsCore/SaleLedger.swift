/// The system of record for drops and sales, whatever store leases the units: Postgres.
/// A store that keeps its leases elsewhere (Redis) writes its sales through this, so a
/// confirmed sale is durable and unique per drop and unit.
public protocol SaleLedger: Sendable {
    /// Records a drop; answers the backend of the drop when the id is taken already.
    func registerDrop(_ config: DropConfig, backend: String) async throws -> DropRegistration

    /// Records a sale. Recording the same sale again (same claim and fence) succeeds; a
    /// second sale of the unit throws `.unitAlreadySold`.
    func recordSale(_ sale: Sale) async throws

    /// The sale of a unit, if there is one.
    func sale(drop: DropID, unit: Int) async throws -> Sale?

    /// A drop's settings as recorded; throws `.unknownDrop` for an unknown drop.
    func dropConfiguration(_ drop: DropID) async throws -> DropConfig

    /// Records a drop's new claim window; throws `.unknownDrop` for an unknown drop.
    func rescheduleDrop(_ drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig
}

/// What `SaleLedger.registerDrop` did.
public enum DropRegistration: Sendable, Hashable {
    case created
    case exists(backend: String)
}
