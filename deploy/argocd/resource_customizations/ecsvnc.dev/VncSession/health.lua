-- Argo CD health for ecsvnc.dev/VncSession: a break-glass grant to open the console of an
-- Alibaba Cloud ECS instance. The operator keeps status.phase in one of Pending, Ready, UrlExpired,
-- Expired, Failed and Closed; this script maps each phase to an Argo CD health status.
--
-- Only Lua's base library is used (no string, math or io): Argo CD runs scripts configured in
-- argocd-cm without the standard libraries. Every field is read through `field`, so a missing or
-- oddly shaped field gives a message, never a Lua error.

-- value[key] when value is a table, nil otherwise.
local function field(value, key)
  if type(value) == "table" then
    return value[key]
  end
  return nil
end

-- Printable text for a non-empty string or a number, nil for anything else.
local function text(value)
  if type(value) == "string" and value ~= "" then
    return value
  end
  if type(value) == "number" then
    return tostring(value)
  end
  return nil
end

-- The status ("True", "False", ...) of the condition of type `wanted`, nil when absent.
local function condition(status, wanted)
  local conditions = field(status, "conditions")
  if type(conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(conditions) do
    if field(c, "type") == wanted then
      return field(c, "status"), text(field(c, "message"))
    end
  end
  return nil
end

local metadata = field(obj, "metadata")
local status = field(obj, "status")

-- The kubectl plugin command a person runs for this session.
local function kubectl_vnc(verb)
  local command = "kubectl vnc " .. verb .. " " .. (text(field(metadata, "name")) or "NAME")
  local namespace = text(field(metadata, "namespace"))
  if namespace ~= nil then
    command = command .. " -n " .. namespace
  end
  return command
end

-- "code: message" from status.lastError, nil when nothing is recorded.
local function last_error()
  local err = field(status, "lastError")
  local code = text(field(err, "code"))
  local message = text(field(err, "message"))
  if code ~= nil and message ~= nil then
    return code .. ": " .. message
  end
  return code or message
end

-- One entry per phase: returns the health status and its message.
local phases = {}

phases.Pending = function()
  local err = last_error()
  if err ~= nil then
    return "Progressing", "waiting for a console URL to be issued: " .. err
  end
  return "Progressing", "waiting for a console URL to be issued"
end

phases.Ready = function()
  local expires = text(field(status, "urlExpiresAt"))
  if expires ~= nil then
    return "Healthy", "console URL valid until " .. expires
  end
  return "Healthy", "console URL issued and valid"
end

phases.UrlExpired = function()
  local message = "URL expired"
  if field(status, "refreshable") == true then
    message = message .. "; refreshable"
  end
  local session_end = text(field(status, "sessionExpiresAt"))
  if session_end ~= nil then
    message = message .. "; a console opened in time stays connected until " .. session_end .. " at most"
  end
  return "Healthy", message .. "; `" .. kubectl_vnc("open") .. "` issues a new URL"
end

phases.Expired = function()
  local message = "console session expired"
  if field(status, "refreshable") == true then
    message = message .. "; refreshable"
  end
  return "Healthy", message .. "; `" .. kubectl_vnc("open") .. "` issues a new URL"
end

phases.Failed = function()
  local _, ready_message = condition(status, "Ready")
  local message = last_error() or ready_message or "the last request for a console URL failed"
  local refreshable = field(status, "refreshable")
  local stalled = condition(status, "Stalled") == "True"
  if refreshable == true and not stalled then
    local retry_at = text(field(status, "retryAt"))
    if retry_at ~= nil then
      return "Degraded", message .. "; the operator retries automatically at " .. retry_at
    end
    return "Degraded", message .. "; the operator retries automatically"
  end
  if refreshable == true then
    return "Degraded", message .. "; automatic retries ran out, `" .. kubectl_vnc("refresh") .. "` tries again"
  end
  if refreshable == false or stalled then
    return "Degraded", message .. "; not retried automatically: needs a change to the spec or its credentials"
  end
  return "Degraded", message
end

phases.Closed = function()
  local ttl = text(field(field(obj, "spec"), "ttl"))
  local message = "grant closed: its ttl has passed"
  if ttl ~= nil then
    message = "grant closed: its ttl of " .. ttl .. " has passed"
  end
  return "Suspended", message .. "; no more console URLs are issued, raise spec.ttl or create a new VncSession to grant access again"
end

local hs = {}

local generation = tonumber(field(metadata, "generation"))
local observed = tonumber(field(status, "observedGeneration"))
local phase = field(status, "phase")

if type(status) ~= "table" then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to pick up this session (no status yet)"
elseif generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to act on spec generation " .. tostring(generation)
    .. " (status is for generation " .. tostring(observed) .. ")"
elseif phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report a phase"
elseif type(phase) == "string" and phases[phase] ~= nil then
  hs.status, hs.message = phases[phase]()
else
  hs.status = "Unknown"
  hs.message = "unrecognised phase " .. (text(phase) or type(phase))
    .. "; expected Pending, Ready, UrlExpired, Expired, Failed or Closed"
end

return hs
