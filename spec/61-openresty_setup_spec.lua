-- What README's OpenResty section tells a newcomer, checked against a real
-- nginx (Debian's, with the ndk and lua modules loaded by load_module): a
-- master started by root runs its workers as nobody, and a client whose
-- `shm:` limiter file is in a folder that is missing, or that nobody cannot
-- write, fails at its creation (in init_worker) with an error that names
-- the folder, instead of every later request failing.
local portable = require "portable"
local socket = require "socket"

local NGINX = "/usr/sbin/nginx"
local MODULES = "/usr/lib/nginx/modules"

-- s as a Lua pattern that matches it literally.
local function lit(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

local free_port = portable.free_port

local function http_get(port)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(10)
  c:send "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
  local text = c:receive "*a"
  c:close()
  return text and text:match "\r\n\r\n(.*)$"
end

-- Start nginx (the master as root, no user line) whose one worker makes a
-- REST client with `limiter` in init_worker; what the worker answers:
-- "uid=<uid> ok" or "uid=<uid> <the error>".
local function worker_says(dir, limiter)
  local repo = assert(io.popen "pwd"):read "*l"
  local port = free_port()
  portable.write_file(dir .. "/nginx.conf", ([[
load_module %s/ndk_http_module.so;
load_module %s/ngx_http_lua_module.so;
worker_processes 1;
daemon on;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    lua_package_path '%s/lua/?.lua;%s/lua/?/init.lua;;';
    lua_package_cpath '%s/build/luajit/?.so;;';
    init_worker_by_lua_block {
        local uid = io.open("/proc/self/status"):read("*a"):match("\nUid:%%s+(%%d+)")
        local ok, err = pcall(require("planapi").planfix_rest,
            { base_url = "https://localhost/rest/", token = "t", limiter = %q })
        package.loaded.setup_says = "uid=" .. uid .. " " .. (ok and "ok" or tostring(err))
    }
    server {
        listen 127.0.0.1:%d;
        location / { content_by_lua_block { ngx.print(package.loaded.setup_says) } }
    }
}
]]):format(MODULES, MODULES, dir, dir, dir, dir, dir, dir, dir, repo, repo, repo, limiter, port))
  assert(portable.execute(("%s -p %s -c %s/nginx.conf -e %s/error.log 2>%s/start.log")
      :format(NGINX, dir, dir, dir, dir)),
    portable.read_file(dir .. "/start.log"))
  local says
  for _ = 1, 100 do -- the worker comes up
    local ok, text = pcall(http_get, port)
    if ok and text then says = text break end
    require("planapi.core").sleep(0.05)
  end
  portable.execute(("%s -p %s -c %s/nginx.conf -s stop 2>/dev/null"):format(NGINX, dir, dir))
  return says
end

describe("OpenResty setup as README describes it", function()
  local dir
  before_each(function()
    dir = portable.tmpdir()
    os.execute("chmod 755 " .. dir) -- the workers (nobody) must reach into it
  end)
  after_each(function() portable.rmtree(dir) end)

  local function runnable()
    if not portable.execute("test -x " .. NGINX .. " -a -f " .. MODULES .. "/ngx_http_lua_module.so") then
      pending "Debian's nginx with libnginx-mod-http-lua is not installed"
      return false
    end
    if not portable.execute "test \"$(id -u)\" = 0" then
      pending "needs root: the master must start the workers as another user"
      return false
    end
    assert(portable.execute "make --no-print-directory -s LUA=luajit > /dev/null", "make LUA=luajit failed")
    return true
  end

  it("runs the workers as nobody, and a missing shm: folder is an error at creation naming it", function()
    if not runnable() then return end
    local says = worker_says(dir, "shm:" .. dir .. "/missing/planapi.limits")
    assert.is_string(says, portable.read_file(dir .. "/error.log"))
    assert.matches("^uid=65534 ", says) -- nobody
    assert.matches(lit(("config error: cannot create the shared limiter file %s/missing/planapi.limits: the folder "
      .. "%s/missing does not exist"):format(dir, dir)), says)
  end)

  it("names a folder the workers cannot write, and works once it is theirs", function()
    if not runnable() then return end
    local folder = dir .. "/limits"
    os.execute(("mkdir -m 755 %s"):format(folder)) -- root's: nobody cannot create a file in it
    local says = worker_says(dir, "shm:" .. folder .. "/planapi.limits")
    assert.is_string(says, portable.read_file(dir .. "/error.log"))
    assert.matches(lit(("cannot open the shared limiter file %s/planapi.limits as uid 65534: Permission denied; "
      .. "the folder %s must be writable"):format(folder, folder)), says)
    os.execute("chown nobody " .. folder)
    assert.equal("uid=65534 ok", worker_says(dir, "shm:" .. folder .. "/planapi.limits"))
  end)
end)
