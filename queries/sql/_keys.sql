{{- /*
_keys: optional equality filters on the event keys. An empty string means
"no filter". Parameters: namespace, function, qualifier (String).
*/ -}}
({namespace:String} = '' OR namespace = {namespace:String})
      AND ({function:String} = '' OR function = {function:String})
      AND ({qualifier:String} = '' OR qualifier = {qualifier:String})
