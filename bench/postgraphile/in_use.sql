-- SeatPool.inUse for PostGraphile, as a computed column: counted as licensing/usage.py counts
-- (R13, R14, R52). Only the benchmark's database gets it; bureau's schema does not know it.
CREATE OR REPLACE FUNCTION seat_pools_in_use(p seat_pools) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT CASE p.license_type
    WHEN 'NAMED' THEN (
      SELECT count(DISTINCT m.user_id)::int
      FROM memberships m
      JOIN companies c ON c.id = m.company_id
      JOIN subscriptions s ON s.agreement_id = c.agreement_id
      WHERE s.id = p.subscription_id AND m.license_type = 'NAMED' AND m.status <> 'DEACTIVATED'
        AND (m.access_ends_at IS NULL OR m.access_ends_at > now())
        AND (m.status = 'ACTIVE' OR m.invitation_expires_at IS NULL OR m.invitation_expires_at > now()))
    WHEN 'CONCURRENT' THEN (
      SELECT count(*)::int FROM license_sessions l
      WHERE l.subscription_id = p.subscription_id AND l.ended_at IS NULL AND l.expires_at > now())
    ELSE (  -- CLIENT_USER: the client users assigned, on a firm's master subscription only
      SELECT count(*)::int FROM client_users cu JOIN subscriptions s ON s.master_firm_id = cu.firm_id
      WHERE s.id = p.subscription_id)
    END
$$;
