private import Crypto
import DibsCore

/// The Lua of the Redis lease store: one script per operation, each atomic in Redis.
///
/// Every key of a drop starts with `dibs:{drop}:` (the hash tag puts a drop in one slot, so
/// the scripts run unchanged on Redis Cluster); the prefix is the script's one declared key.
///
/// Keys under the prefix: `cfg` (hash: units, ttl, limit, cap, mode, opens, closes), `next`
/// (the lowest never-leased unit, so a drop of any size is created in O(1)), `free` (list of
/// units that came back), `held`, `sold` (counts), `exp` (zset claim → lease expiry ms: the
/// leases; the claim's hash has the unit), `fence`, `seq` (counters), `keys` (hash
/// Idempotency-Key → claim, `-claim` when its first answer was "sold out"), `live` (hash
/// shopper → live claims), `wl` (list: the waitlist), `entries`, `limbo` (set of units whose
/// confirm began but did not finish before the lease ran out; see `RedisLeaseStore.confirm`),
/// and `c:<n>` per claim (hash: u user, st state, unit, f fence, x expiry, th token hash, tk the
/// token masked (`HoldTokenSeal`) for replays, fs/fp/fx the first answer — a claim's unit and
/// fence never change once set, so a first answer `held` has them in unit and f —, rj
/// rejection, or order ref).
///
/// A lease is its claim's entry in `exp` (and the unit in the claim's hash): a held claim not
/// in `exp` has no lease. There is no index from unit to claim, which cost every lease a write
/// (2 of a claim's 24 µs of Redis), nor a key per lease (`SET lease NX PX`): every script
/// settles the leases that ran out before it reads one, so such a key checked nothing they do
/// not, and cost a claim 3.8 of its 33 µs.
public enum LeaseScripts {
    /// Functions every script shares.
    static let prelude = """
        local K = KEYS[1]
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        -- Leases `unit` to claim `c` until now + ttl; `first`, for a new claim, is more fields
        -- of its hash, written in the same HSET. Numbers are made strings once, here: Redis
        -- and Lua turn each number they are given into text with printf, a cost per use.
        local function lease_unit(unit, c, now, ttl, first)
          unit, c = tostring(unit), tostring(c)
          local fence = tostring(redis.call('INCR', K .. 'fence'))
          local exp = tostring(now + ttl)
          redis.call('ZADD', K .. 'exp', exp, c)
          local fields = {'st', 'held', 'unit', unit, 'f', fence, 'x', exp}
          if first then
            for _, value in ipairs(first) do fields[#fields + 1] = value end
            for _, value in ipairs({'fs', 'held', 'fx', exp}) do fields[#fields + 1] = value end
          end
          redis.call('HSET', K .. 'c:' .. c, unpack(fields))
          return fence, exp
        end
        -- A unit came back: the oldest waitlisted claim gets it, or it is free again.
        local function give_unit(unit, now, ttl)
          local w = redis.call('LPOP', K .. 'wl')
          if w then
            lease_unit(unit, w, now, ttl)
            return true
          end
          redis.call('RPUSH', K .. 'free', unit)
          redis.call('DECR', K .. 'held')
          return false
        end
        -- Ends claim c's lease of `unit` (the claim's shopper is `user`).
        local function end_lease(c, unit, user, state, now, ttl)
          redis.call('HSET', K .. 'c:' .. c, 'st', state)
          redis.call('ZREM', K .. 'exp', c)
          redis.call('HINCRBY', K .. 'live', user, '-1')
          return give_unit(unit, now, ttl)
        end
        -- Ends claim c's lease, which ran out, and promotes the waitlist onto its unit. A unit
        -- whose confirm began ('confirming') is not handed on: its sale may be in Postgres.
        -- Returns 'expired', 'promoted' or 'limbo'.
        local function settle_lease(c, now, ttl)
          local h = redis.call('HMGET', K .. 'c:' .. c, 'st', 'unit', 'u')
          if h[1] == 'confirming' then
            redis.call('ZREM', K .. 'exp', c)
            redis.call('SADD', K .. 'limbo', h[2])
            return 'limbo'
          end
          return end_lease(c, h[2], h[3], 'expired', now, ttl) and 'promoted' or 'expired'
        end
        -- Settles the leases that ran out, oldest first: at most `batch` of them when given, so
        -- one call never stalls Redis on a wave of expiries (18,000 took 0.1 s in one claim);
        -- the next calls settle the rest, and a call whose answer depends on them settles all.
        local function settle(now, ttl, batch)
          local expired, promoted = 0, 0
          local due = batch and redis.call('ZRANGEBYSCORE', K .. 'exp', '-inf', now, 'LIMIT', '0', batch)
            or redis.call('ZRANGEBYSCORE', K .. 'exp', '-inf', now)
          for _, c in ipairs(due) do
            local ended = settle_lease(c, now, ttl)
            if ended ~= 'limbo' then expired = expired + 1 end
            if ended == 'promoted' then promoted = promoted + 1 end
          end
          return expired, promoted
        end
        -- A string, as the literals '0', '1' and '-1' given to Redis are: a Lua number given to
        -- redis.call is turned into text with printf each time.
        local SETTLE_BATCH = '64'
        -- Whether a lease ran out and is not settled yet.
        local function unsettled(now)
          return #redis.call('ZRANGEBYSCORE', K .. 'exp', '-inf', now, 'LIMIT', '0', '1') > 0
        end
        local function cfg()
          return redis.call('HMGET', K .. 'cfg', 'units', 'ttl', 'limit', 'cap', 'mode', 'opens', 'closes')
        end
        -- An answer is one string, its twelve fields joined by newlines (one reply for Redis to
        -- write and Dibs to decode, where twelve strings were a reply object each): code, claim,
        -- user, state, rejection, unit, fence, expires, position, replayed, hold token, order
        -- ref. The order ref, the one field that may hold a newline, is last; a user id holds
        -- no control character.
        local function pack(code, c, user, st, rj, unit, f, x, position, replayed, token, order)
          return table.concat({code, c, user, st, rj, unit, f, x, position, replayed, token, order}, '\\n')
        end
        -- The claim's answer; the token (kept with the claim, masked, followed by its hash) only
        -- in a claim's replay of its first answer.
        local function answer(code, c, replayed, first)
          if not c then return pack(code, '', '', '', '', '', '', '', '', '0', '', '') end
          local h = redis.call('HMGET', K .. 'c:' .. c, 'u', 'st', 'rj', 'unit', 'f', 'x', 'fp', 'or', 'fs', 'fx', 'tk',
                               'th')
          local st, unit, f, x = h[2], h[4], h[5], h[6]
          if first then
            st, x = h[9], h[10]
            -- A claim first waitlisted may hold a unit now; its first answer had none.
            if st ~= 'held' then unit, f = nil, nil end
          end
          if st == 'confirming' then st = 'held' end
          return pack(code, tostring(c), h[1] or '', st or '', h[3] or '', unit or '', f or '', x or '', h[7] or '',
                      replayed and '1' or '0', first and h[11] and (h[11] .. (h[12] or '')) or '', h[8] or '')
        end
        local function fail(code) return answer(code, nil) end
        local function claim_of(n)
          if redis.call('EXISTS', K .. 'c:' .. n) == 0 then return nil end
          return redis.call('HMGET', K .. 'c:' .. n, 'u', 'st', 'unit', 'f', 'x', 'th')
        end
        -- Claim n (read as `c`) again after settling its own lease if that ran out, whatever
        -- the batch left unsettled.
        local function settle_own(n, c, now, ttl)
          if c[2] == 'held' or c[2] == 'confirming' then
            local exp = redis.call('ZSCORE', K .. 'exp', n)
            if exp and tonumber(exp) <= now then
              settle_lease(n, now, ttl)
              return claim_of(n)
            end
          end
          return c
        end
        -- The claim ARGV[1], after settling its drop, checked against the token hash ARGV[2]:
        -- the claim, or nil and the error answer.
        local function settled_claim()
          local d = cfg()
          if not d[1] then return nil, fail('unknown-claim') end
          local ttl = tonumber(d[2])
          local now = now_ms()
          settle(now, ttl, SETTLE_BATCH)
          local c = claim_of(ARGV[1])
          if not c then return nil, fail('unknown-claim') end
          c = settle_own(ARGV[1], c, now, ttl)
          if c[6] ~= ARGV[2] then return nil, fail('invalid-hold-token') end
          return c, nil, now, ttl
        end

        """

    /// ARGV: units, ttl ms, limit, waitlist capacity, mode, opens ms, closes ms or ''.
    static let create = Script(
        prelude + """
            if redis.call('EXISTS', K .. 'cfg') == 1 then return 'drop-exists' end
            redis.call('HSET', K .. 'cfg', 'units', ARGV[1], 'ttl', ARGV[2], 'limit', ARGV[3], 'cap', ARGV[4],
                       'mode', ARGV[5], 'opens', ARGV[6], 'closes', ARGV[7])
            redis.call('SET', K .. 'next', 0)
            redis.call('SET', K .. 'held', 0)
            redis.call('SET', K .. 'sold', 0)
            return 'ok'
            """)

    /// ARGV: opens ms, closes ms or ''. Sets the claim window of an existing drop.
    static let reschedule = Script(
        prelude + """
            if redis.call('EXISTS', K .. 'cfg') == 0 then return 'unknown-drop' end
            redis.call('HSET', K .. 'cfg', 'opens', ARGV[1], 'closes', ARGV[2])
            return 'ok'
            """)

    /// ARGV: user, Idempotency-Key, token hash (hex), token masked. The masked token is kept
    /// with the claim (`tk`), written in the same step, so a replay of the first answer
    /// carries it even when the process that answered first died before anything else was
    /// written.
    public static let claim = Script(
        prelude + """
            local d = cfg()
            if not d[1] then return fail('unknown-drop') end
            local units, ttl, limit, cap = tonumber(d[1]), tonumber(d[2]), tonumber(d[3]), tonumber(d[4])
            local user, key = ARGV[1], ARGV[2]
            local existing = redis.call('HGET', K .. 'keys', key)
            if existing then
              if existing:byte(1) == 45 then existing = existing:sub(2) end -- '-': first answered sold out
              if redis.call('HGET', K .. 'c:' .. existing, 'u') ~= user then return fail('idempotency-key-reused') end
              return answer('ok', existing, true, true)
            end
            local now = now_ms()
            -- Outside the drop's window: refused, and nothing recorded (a retry may come in it).
            local outside = (now < tonumber(d[6]) and 'not-open') or (d[7] ~= '' and now >= tonumber(d[7]) and 'closed')
            if outside then return pack('ok', '', '', 'rejected', outside, '', '', '', '', '0', '', '') end
            settle(now, ttl, SETTLE_BATCH)
            local c = tostring(redis.call('INCR', K .. 'seq'))
            local ck = K .. 'c:' .. c
            -- The key's claim; marked '-' when the first answer is "sold out", so the keys whose
            -- first answer is not are told apart (see LeaseStore.answeredKeys).
            local function answered(claim) redis.call('HSET', K .. 'keys', key, claim or c) end
            -- The first answer, built from what this script just wrote rather than read back.
            local function first(st, rj, unit, fence, exp, position)
              return pack('ok', c, user, st, rj or '', unit and tostring(unit) or '', fence or '', exp or '',
                          position and tostring(position) or '', '0', '', '')
            end
            local function reject(reason)
              redis.call('HSET', ck, 'u', user, 'st', 'rejected', 'fs', 'rejected', 'rj', reason)
              answered(reason == 'sold-out' and '-' .. c or nil)
              return first('rejected', reason)
            end
            -- Every unit sold is for good: a new claim is "sold out", a shopper at the limit too,
            -- so no claim after that moment adds a key not marked '-' (the service reads them once, then).
            if tonumber(redis.call('GET', K .. 'sold')) >= units then return reject('sold-out') end
            -- "Limit reached", "waitlisted" and "sold out" may each be wrong while a lease that ran
            -- out is unsettled (the shopper's own, a unit that would come free): before giving
            -- one, settle on, a batch at a time, until the answer is certain.
            -- The shopper's place under the limit is taken first (one command where a check and
            -- a count were two) and given back when the claim gets no unit, line or entry.
            local live = redis.call('HINCRBY', K .. 'live', user, '1')
            if live > limit then
              live = redis.call('HINCRBY', K .. 'live', user, '-1')
              while live >= limit and unsettled(now) do
                settle(now, ttl, SETTLE_BATCH)
                live = tonumber(redis.call('HGET', K .. 'live', user))
              end
              if live >= limit then return reject('limit-reached') end
              redis.call('HINCRBY', K .. 'live', user, '1')
            end
            if d[5] == 'draw' then
              local n = redis.call('INCR', K .. 'entries')
              redis.call('HSET', ck, 'u', user, 'st', 'entered', 'fs', 'entered', 'fp', n, 'th', ARGV[3],
                         'tk', ARGV[4])
              answered()
              return first('entered', nil, nil, nil, nil, n)
            end
            local function take_unit()
              local free = redis.call('LPOP', K .. 'free')
              if free then return free end
              local nxt = redis.call('GET', K .. 'next')
              if tonumber(nxt) < units then
                redis.call('INCR', K .. 'next')
                return nxt
              end
              return nil
            end
            -- A unit is free only while the waitlist is empty, so taking it keeps the order.
            local unit = take_unit()
            while not unit and unsettled(now) do
              settle(now, ttl, SETTLE_BATCH)
              unit = take_unit()
            end
            if unit then
              redis.call('INCR', K .. 'held')
              local fence, exp = lease_unit(unit, c, now, ttl, {'u', user, 'th', ARGV[3], 'tk', ARGV[4]})
              answered()
              return first('held', nil, unit, fence, exp)
            end
            if tonumber(redis.call('GET', K .. 'held')) > 0 and redis.call('LLEN', K .. 'wl') < cap then
              local position = redis.call('RPUSH', K .. 'wl', c)
              redis.call('HSET', ck, 'u', user, 'st', 'waitlisted', 'fs', 'waitlisted', 'fp', position,
                         'th', ARGV[3], 'tk', ARGV[4])
              answered()
              return first('waitlisted', nil, nil, nil, nil, position)
            end
            redis.call('HINCRBY', K .. 'live', user, '-1')
            return reject('sold-out')
            """)

    /// The first step of a confirm. ARGV: claim, token hash, fence, grace ms. Checks the lease
    /// and marks the claim `confirming`, its lease stretched by the grace so it cannot run
    /// out while the sale is written to Postgres.
    static let confirmBegin = Script(
        prelude + """
            local c, err, now, ttl = settled_claim()
            if err then return err end
            if c[2] == 'confirmed' or c[2] == 'confirming' then
              if c[4] ~= ARGV[3] then return fail('stale-fence') end
              return answer('ok', ARGV[1], false, false)
            end
            if c[2] == 'expired' then return fail('lease-expired') end
            if c[2] ~= 'held' then return fail('not-held') end
            if c[4] ~= ARGV[3] then return fail('stale-fence') end
            if not redis.call('ZSCORE', K .. 'exp', ARGV[1]) then return fail('lease-expired') end
            local until_ms = now + tonumber(ARGV[4])
            redis.call('HSET', K .. 'c:' .. ARGV[1], 'st', 'confirming')
            redis.call('ZADD', K .. 'exp', until_ms, ARGV[1])
            return answer('ok', ARGV[1], false, false)
            """)

    /// The last step of a confirm, after the sale is in Postgres. ARGV: claim, fence, order ref.
    static let confirmCommit = Script(
        prelude + """
            local c = claim_of(ARGV[1])
            if not c then return fail('unknown-claim') end
            if c[2] == 'confirmed' then return answer('ok', ARGV[1], false, false) end
            if c[2] ~= 'confirming' or c[4] ~= ARGV[2] then return fail('not-held') end
            redis.call('HSET', K .. 'c:' .. ARGV[1], 'st', 'confirmed', 'or', ARGV[3])
            redis.call('ZREM', K .. 'exp', ARGV[1])
            redis.call('SREM', K .. 'limbo', c[3])
            redis.call('DECR', K .. 'held')
            redis.call('INCR', K .. 'sold')
            return answer('ok', ARGV[1], false, false)
            """)

    /// ARGV: claim, token hash.
    static let release = Script(
        prelude + """
            local c, err, now, ttl = settled_claim()
            if err then return err end
            local ck = K .. 'c:' .. ARGV[1]
            if c[2] == 'held' then
              end_lease(ARGV[1], c[3], c[1], 'released', now, ttl)
            elseif c[2] == 'waitlisted' then
              redis.call('LREM', K .. 'wl', 1, ARGV[1])
              redis.call('HSET', ck, 'st', 'lapsed')
              redis.call('HINCRBY', K .. 'live', c[1], '-1')
            elseif c[2] == 'entered' then
              redis.call('HSET', ck, 'st', 'lost')
              redis.call('HINCRBY', K .. 'live', c[1], '-1')
            elseif c[2] == 'confirmed' or c[2] == 'confirming' or c[2] == 'rejected' then
              return fail('not-held')
            end
            return answer('ok', ARGV[1], false, false)
            """)

    /// ARGV: claim, token hash, fence.
    static let extend = Script(
        prelude + """
            local c, err, now, ttl = settled_claim()
            if err then return err end
            if c[2] == 'expired' then return fail('lease-expired') end
            if c[2] ~= 'held' then return fail('not-held') end
            if c[4] ~= ARGV[3] then return fail('stale-fence') end
            local exp = now + ttl
            redis.call('ZADD', K .. 'exp', exp, ARGV[1])
            redis.call('HSET', K .. 'c:' .. ARGV[1], 'x', exp)
            return answer('ok', ARGV[1], false, false)
            """)

    /// ARGV: claim.
    static let status = Script(
        prelude + """
            local d = cfg()
            if not d[1] then return fail('unknown-claim') end
            local now, ttl = now_ms(), tonumber(d[2])
            settle(now, ttl, SETTLE_BATCH)
            local c = claim_of(ARGV[1])
            if not c then return fail('unknown-claim') end
            settle_own(ARGV[1], c, now, ttl)
            return answer('ok', ARGV[1], false, false)
            """)

    /// Returns {code, expired, promoted}.
    static let reap = Script(
        prelude + """
            local d = cfg()
            if not d[1] then return {'unknown-drop', 0, 0} end
            local expired, promoted = settle(now_ms(), tonumber(d[2]))
            return {'ok', expired, promoted}
            """)

    /// Returns {code, units, free, held, sold, waitlisted, limbo, {unit, claim, fence, expiry, …}}.
    static let inspect = Script(
        prelude + """
            local d = cfg()
            if not d[1] then return {'unknown-drop'} end
            -- The whole settle for the operator's listing; a batch for the counts, read every 5 s.
            settle(now_ms(), tonumber(d[2]), ARGV[1] == 'counts' and SETTLE_BATCH or nil)
            local units = tonumber(d[1])
            local free = redis.call('LLEN', K .. 'free') + units - tonumber(redis.call('GET', K .. 'next'))
            local leases = {}
            -- ARGV[1] = 'counts': no leases, O(1) — the gauges and the sold-out check.
            local exp = ARGV[1] == 'counts' and {} or redis.call('ZRANGE', K .. 'exp', 0, -1, 'WITHSCORES')
            for i = 1, #exp, 2 do
              local c = exp[i]
              local h = redis.call('HMGET', K .. 'c:' .. c, 'unit', 'f')
              table.insert(leases, h[1])
              table.insert(leases, c)
              table.insert(leases, h[2])
              table.insert(leases, exp[i + 1])
            end
            return {'ok', units, free, tonumber(redis.call('GET', K .. 'held')), tonumber(redis.call('GET', K .. 'sold')),
                    redis.call('LLEN', K .. 'wl'), redis.call('SCARD', K .. 'limbo'), leases}
            """)
}

/// A Lua script and its SHA-1, for EVALSHA.
public struct Script: Sendable {
    /// The Lua source.
    public let source: String
    /// Its SHA-1 in hex, the name EVALSHA takes.
    public let sha1: String

    init(_ source: String) {
        self.source = source
        self.sha1 = Hex.encode(Insecure.SHA1.hash(data: Array(source.utf8)))
    }
}
