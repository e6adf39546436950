-- LÖVE's configuration for the job board (examples/love/main.lua).
-- The board draws text and rectangles only: no audio, no joystick, no
-- physics, so it starts on a machine without a sound device (or under Xvfb).
function love.conf(t)
  t.identity = "planapi-jobboard"
  t.version = "11.4"
  t.window.title = "Planado jobs of the day (planapi)"
  t.window.width = 640
  t.window.height = 400
  -- Frame pacing comes from love.run's own short sleep, not from the
  -- display: a virtual display (Xvfb) has no refresh to wait for.
  t.window.vsync = 0
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
  t.modules.touch = false
end
