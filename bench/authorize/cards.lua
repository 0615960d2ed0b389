-- Distinct Luhn-valid Visa numbers, one per request, so velocity rules count per card and are
-- exercised rather than tripped. Each wrk thread draws from its own sequence (see setup()).
function luhn_complete(partial)
  local sum, double = 0, true
  for i = #partial, 1, -1 do
    local d = tonumber(partial:sub(i, i))
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return partial .. tostring((10 - sum % 10) % 10)
end

function distinct_card(tid, counter)
  -- 4 + thread (1 digit) + 13 digits of counter/random mix + check digit = 16 digits.
  local middle = string.format("%06d%07d", math.random(0, 999999), counter % 10000000)
  return luhn_complete("4" .. tostring(tid % 10) .. middle)
end
