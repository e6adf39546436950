-- LÖVE's configuration for the job board (examples/love/main.lua).
-- The board draws text and rectangles only: no audio, no joystick, no
-- physics, so it starts on a machine without a sound device (or under Xvfb).
function love.conf(t)
  t.identity = "planapi-jobboard"
  t.version = "11.4"
  t.window.title = "Planado jobs of the day (planapi)"
  t.window.width = 640
  t.window.height = 400
  -- One frame per display refresh, not a loop spinning a core; a virtual
  -- display (Xvfb) has no refresh to wait for, and love.run's own short
  -- sleep paces the loop there.
  t.window.vsync = 1
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
  t.modules.touch = false
end
