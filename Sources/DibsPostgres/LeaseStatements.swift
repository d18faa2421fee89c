import DibsCore
import PostgresNIO

/// The named statements of the Postgres lease store: each calls one function of
/// `schema/002_lease_functions.sql`, prepared once per connection.
/// A statement that answers one `dibs_answer` row.
protocol AnswerStatement: PostgresPreparedStatement where Row == LeaseStatements.AnswerRow {}

extension AnswerStatement {
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

enum LeaseStatements {
    /// The columns of `dibs_answer`.
    typealias AnswerRow = (String, Int64?, String?, String?, String?, Int?, Int64?, Int64?, Int?, Bool, String?)

    static let answerColumns =
        "code, claim_id, user_id, state, rejection, unit, fence, expires_ms, queue_position, replayed, order_ref"

    struct Claim: AnswerStatement {
        static let name = "dibs_claim_v1"
        static let sql = "SELECT \(answerColumns) FROM dibs_claim($1, $2, $3, $4)"
        let drop: String, user: String, key: String, tokenHash: String

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(drop)
            bindings.append(user)
            bindings.append(key)
            bindings.append(tokenHash)
            return bindings
        }
    }

    struct Confirm: AnswerStatement {
        static let name = "dibs_confirm_v1"
        static let sql = "SELECT \(answerColumns) FROM dibs_confirm($1, $2, $3, $4, $5)"
        let drop: String, claim: Int64, tokenHash: String, fence: Int64, orderRef: String?

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(drop)
            bindings.append(claim)
            bindings.append(tokenHash)
            bindings.append(fence)
            bindings.append(orderRef)
            return bindings
        }
    }

    struct Release: AnswerStatement {
        static let name = "dibs_release_v1"
        static let sql = "SELECT \(answerColumns) FROM dibs_release($1, $2, $3)"
        let drop: String, claim: Int64, tokenHash: String

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(drop)
            bindings.append(claim)
            bindings.append(tokenHash)
            return bindings
        }
    }

    struct Extend: AnswerStatement {
        static let name = "dibs_extend_v1"
        static let sql = "SELECT \(answerColumns) FROM dibs_extend($1, $2, $3, $4)"
        let drop: String, claim: Int64, tokenHash: String, fence: Int64

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(drop)
            bindings.append(claim)
            bindings.append(tokenHash)
            bindings.append(fence)
            return bindings
        }
    }

    struct Status: AnswerStatement {
        static let name = "dibs_status_v1"
        static let sql = "SELECT \(answerColumns) FROM dibs_status($1, $2)"
        let drop: String, claim: Int64

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(drop)
            bindings.append(claim)
            return bindings
        }
    }
}
