#!lua name=atcr_indexer_v1
-- The function library of atcr-indexer: `atcr_apply_v1` runs one step (a Program, args[1],
-- JSON) atomically.
--
-- keys[1] is a key of the step's slot, for routing only; every key the function touches lies in
-- that slot. The program names the keys it writes; the keys it finds through locators are built
-- here under `program.base`, following docs/keys.md. Values are rendered by the daemon and are
-- written as given. Returns JSON {status, answer, follow, notes}.

-- State of the call in progress; set at the start of every call (calls never overlap).
-- `wrote` records whether the step wrote any key of the account, which then gets its marker.
local base, did, ttl, out, follow, notes, wrote

-- Manifests read, newest first, to find the repository's annotations: bounds the work of a
-- repository whose manifests carry none (docs/keys.md, "Known limits").
local ANNOTATION_SCAN = 256

-- JSON null decodes to cjson.null, which Lua treats as true.
local function val(x)
  if x == cjson.null then return nil end
  return x
end

local function expire(key, secs)
  if secs and secs > 0 then redis.call('EXPIRE', key, secs) end
end

local function stored_rev(value)
  return string.match(value, '"rev":"([^"]*)"')
end

local function quoted(text)
  if text then return '"' .. text .. '"' end
  return 'null'
end

local function repo_key(repository, what)
  return base .. 'repo:' .. repository .. ':' .. what
end

local function hdel_if_rkey(key, field, rkey)
  local entry = redis.call('HGET', key, field)
  if entry and cjson.decode(entry).rkey == rkey then redis.call('HDEL', key, field) end
end

-- Score in `repos`: the newest manifest's createdAt, 0 with only tags or a page, else gone.
local function refresh_repo(repository, recent)
  local repos = base .. 'repos'
  local top = redis.call('ZREVRANGE', repo_key(repository, 'manifests'), 0, 0, 'WITHSCORES')
  local score = nil
  if #top > 0 then
    score = top[2]
    redis.call('ZADD', repos, score, repository)
    expire(repos, ttl.index)
  elseif redis.call('EXISTS', repo_key(repository, 'tags'), repo_key(repository, 'page')) > 0 then
    redis.call('ZADD', repos, 0, repository)
    expire(repos, ttl.index)
  else
    redis.call('ZREM', repos, repository)
  end
  if recent then
    table.insert(follow, { op = 'recent', did = did, repository = repository, score = score })
  end
end

local function recompute_annotations(repository)
  local key = repo_key(repository, 'annotations')
  local digests = redis.call('ZREVRANGE', repo_key(repository, 'manifests'), 0, ANNOTATION_SCAN - 1)
  for _, digest in ipairs(digests) do
    local manifest = redis.call('GET', base .. 'manifest:' .. digest)
    -- Entries end with their annotations; an empty map needs no decoding.
    if manifest and not string.find(manifest, '"annotations":{}', 1, true) then
      local annotations = val(cjson.decode(manifest).annotations)
      if type(annotations) == 'table' and next(annotations) ~= nil then
        redis.call('DEL', key)
        for name, value in pairs(annotations) do redis.call('HSET', key, name, value) end
        expire(key, ttl.index)
        return
      end
    end
  end
  redis.call('DEL', key)
end

-- A tag entry starts with {"digest":<null or "sha256:…">, so the digest is swapped in place.
local function with_digest(entry, digest)
  local rest = string.match(entry, '^{"digest":[^,]*(,.*)$')
  return '{"digest":' .. quoted(digest) .. rest
end

local function manifest_tags(repository, rkey, digest)
  local key = repo_key(repository, 'tags')
  local uri = 'at://' .. did .. '/io.atcr.manifest/' .. rkey
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local entry = cjson.decode(all[i + 1])
    if val(entry.manifest) == uri then
      local updated = with_digest(all[i + 1], digest or val(entry.manifestDigest))
      if updated ~= all[i + 1] then redis.call('HSET', key, all[i], updated) end
    end
  end
end

local cleanup = {}

cleanup['io.atcr.manifest'] = function(loc, rkey)
  local key = base .. 'manifest:' .. loc.digest
  local refs = redis.call('GET', key .. ':refs')
  if refs then
    for _, child in ipairs(cjson.decode(refs)) do
      redis.call('SREM', base .. 'manifest:' .. child.digest .. ':parents', loc.digest)
    end
  end
  redis.call('DEL', key, key .. ':layers', key .. ':refs', key .. ':scan')
  redis.call('ZREM', repo_key(loc.repository, 'manifests'), loc.digest)
  manifest_tags(loc.repository, rkey, nil)
  recompute_annotations(loc.repository)
  refresh_repo(loc.repository, true)
end

cleanup['io.atcr.tag'] = function(loc, rkey)
  hdel_if_rkey(repo_key(loc.repository, 'tags'), loc.tag, rkey)
  refresh_repo(loc.repository, false)
end

cleanup['io.atcr.repo.page'] = function(loc)
  redis.call('DEL', repo_key(loc.repository, 'page'))
  refresh_repo(loc.repository, false)
end

cleanup['io.atcr.hold.crew'] = function(loc, rkey)
  hdel_if_rkey(base .. 'hold:crew', loc.member, rkey)
end

cleanup['io.atcr.sailor.star'] = function(loc)
  redis.call('ZREM', base .. 'starred', loc.owner .. '/' .. loc.repository)
  table.insert(follow, { op = 'star_remove', owner = loc.owner,
    repository = loc.repository, starrer = did })
end

cleanup['io.atcr.hold.stats'] = function(loc)
  table.insert(follow, { op = 'stats_remove', owner = loc.owner,
    repository = loc.repository, hold = did })
end

cleanup['io.atcr.hold.scan'] = function(loc)
  table.insert(follow, { op = 'scan_remove', owner = loc.owner, digest = loc.digest, hold = did })
end

-- Removes what the record at rkey produced, unless its locator is `keep`; returns the locator.
local function unlocate(collection, rkey, keep, located)
  local current = redis.call('HGET', base .. 'rkeys:' .. collection, rkey) or located
  if not current or current == keep then return current end
  local handler = cleanup[collection]
  if handler then handler(cjson.decode(current), rkey) end
  return current
end

local ops = {}

ops.set = function(op)
  wrote = true
  redis.call('SET', op.key, op.value)
  expire(op.key, op.ttl)
end

ops.hset = function(op)
  wrote = true
  redis.call('HSET', op.key, op.field, op.value)
  expire(op.key, op.ttl)
end

ops.zadd = function(op)
  wrote = true
  if op.only_new then
    redis.call('ZADD', op.key, 'NX', op.score, op.member)
  else
    redis.call('ZADD', op.key, op.score, op.member)
  end
  expire(op.key, op.ttl)
end

ops.sadd = function(op)
  wrote = true
  redis.call('SADD', op.key, op.member)
  expire(op.key, op.ttl)
end

ops.del = function(op) redis.call('DEL', op.key) end
ops.hdel = function(op) redis.call('HDEL', op.key, op.field) end
ops.zrem = function(op) redis.call('ZREM', op.key, op.member) end

ops.del_if = function(op)
  local value = redis.call('GET', op.key)
  if value and cjson.decode(value)[op.json_field] == op.equals then redis.call('DEL', op.key) end
end

ops.unlocate = function(op)
  unlocate(op.collection, op.rkey, val(op.keep), nil)
end

ops.tombstone = function(op)
  wrote = true
  local previous = redis.call('GET', op.key)
  local located = nil
  -- A delete applied again (replay, retried batch) finds its old locator in its own tombstone.
  if previous and string.find(previous, '^{"uri":"[^"]*","rev":') then
    located = string.match(previous, ',"located":(%b{})}$')
  end
  local current = unlocate(op.collection, op.rkey, nil, located)
  redis.call('HDEL', base .. 'rkeys:' .. op.collection, op.rkey)
  local value = op.head
  if current then value = value .. ',"located":' .. current end
  redis.call('SET', op.key, value .. '}')
  expire(op.key, op.ttl)
  out.tombstone = true
end

ops.tag_put = function(op)
  wrote = true
  local digest = nil
  if val(op.manifest_rkey) then
    local loc = redis.call('HGET', base .. 'rkeys:io.atcr.manifest', op.manifest_rkey)
    if loc then digest = cjson.decode(loc).digest end
  end
  local fallback = val(op.fallback)
  if digest and fallback and digest ~= fallback then table.insert(notes, 'tag_pointers_disagree') end
  redis.call('HSET', op.key, op.field, '{"digest":' .. quoted(digest or fallback) .. op.tail)
  expire(op.key, op.ttl)
end

ops.manifest_tags = function(op) manifest_tags(op.repository, op.rkey, val(op.digest)) end
ops.recompute_annotations = function(op) recompute_annotations(op.repository) end
ops.refresh_repo = function(op) refresh_repo(op.repository, op.recent) end
ops.emit = function(op) table.insert(follow, op.follow) end

ops.resolve_page = function(op)
  local loc = redis.call('HGET', base .. 'rkeys:io.atcr.repo.page', op.rkey)
  if loc then out.answer = cjson.decode(loc).repository end
end

ops.resolve_manifest = function(op)
  local loc = redis.call('HGET', base .. 'rkeys:io.atcr.manifest', op.rkey)
  if loc then out.answer = cjson.decode(loc).digest else out.answer = val(op.fallback) end
end

ops.user_ttl = function()
  out.user_ttl = redis.call('TTL', base .. 'user')
end

ops.purge_account = function(op)
  -- Most account events are for accounts that never used ATCR: no SCAN for those.
  if redis.call('EXISTS', base .. 'indexed', base .. 'user') == 0 then return end
  out.purged = true
  for _, member in ipairs(redis.call('ZRANGE', base .. 'starred', 0, -1)) do
    local slash = string.find(member, '/', 1, true)
    if slash then
      table.insert(follow, { op = 'star_remove', owner = string.sub(member, 1, slash - 1),
        repository = string.sub(member, slash + 1), starrer = did })
    end
  end
  for _, repository in ipairs(redis.call('ZRANGE', base .. 'repos', 0, -1)) do
    table.insert(follow, { op = 'recent', did = did, repository = repository })
  end
  local cursor = '0'
  repeat
    local reply = redis.call('SCAN', cursor, 'MATCH', op.pattern, 'COUNT', 1000)
    cursor = reply[1]
    if #reply[2] > 0 then redis.call('DEL', unpack(reply[2])) end
  until cursor == '0'
end

ops.recent = function(op)
  local score = val(op.score)
  if score then
    redis.call('ZADD', op.key, score, op.member)
  else
    redis.call('ZREM', op.key, op.member)
  end
  redis.call('ZREMRANGEBYRANK', op.key, 0, -(op.keep + 1))
end

local function apply(keys, args)
  local program = cjson.decode(args[1])
  base, did, ttl = program.base, program.did, program.ttl
  out, follow, notes, wrote = { status = 'applied' }, {}, {}, false
  local guard = val(program.guard)
  if guard then
    local current = redis.call('GET', guard.key)
    local rev = current and stored_rev(current)
    if rev and rev > guard.rev then return cjson.encode({ status = 'stale' }) end
  end
  for _, op in ipairs(program.ops) do
    local run = ops[op.op]
    if not run then return redis.error_reply('atcr-indexer: unknown op ' .. tostring(op.op)) end
    run(op)
  end
  if wrote and did ~= '' then redis.call('SET', base .. 'indexed', '1') end
  if #follow > 0 then out.follow = follow end
  if #notes > 0 then out.notes = notes end
  return cjson.encode(out)
end

redis.register_function('atcr_apply_v1', apply)
